"""A shipped model file, run as an mmengine model: ``tools/test.py CONFIG
model_int8.onnx`` scores it with the config's own test loop and evaluator.

:class:`DeployedModel` loads what ``tools/deployment/export_model.py
--precision`` writes (:mod:`resnest_mm.deployment.shipping`): an ONNX file
(fp32, int8) run by onnxruntime, or a ``torch.export`` program (``.pt2``,
bf16) run by PyTorch. Its ``predict`` takes the data preprocessor's batch,
runs the file on each image alone (cropped to that image's padded size, as
a batch of one would be) and returns what mmdet's and mmseg's ``predict``
return:

- detector: ``DetDataSample.pred_instances`` (``bboxes`` in the original
  image's pixels, clipped to the image, ``scores``, ``labels``);
- segmentor: ``SegDataSample.seg_logits`` and ``pred_sem_seg`` at the
  original size (padding removed, logits resized bilinearly, argmax).

Everything after the file's outputs is this rescaling; the post-processing
(NMS, top-k, box decoding, resizing to the input) is inside the file.

    model = DeployedModel('work_dirs/faster_rcnn_int8.onnx')
    sample = model.predict_image('demo.jpg')   # a DetDataSample
"""
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.model import BaseModel
from mmengine.registry import MODELS as MMENGINE_MODELS
from torch import Tensor

from resnest_mm.deployment.low_precision import (ort_session,
                                                 slow_precision_warning)
from resnest_mm.deployment.model_export import model_registry
from resnest_mm.deployment.shipping import read_metadata
from resnest_mm.engine.run_config import read_config, task_of

#: The extensions of shipped files: ONNX (onnxruntime), torch.export.
SHIPPED_EXTENSIONS = ('.onnx', '.pt2')


def is_shipped_file(path: str) -> bool:
    """Whether ``path`` names a shipped model rather than a checkpoint."""
    return str(path).endswith(SHIPPED_EXTENSIONS)


def _onnx_runner(path: str, threads: Optional[int]):
    session = ort_session(path, threads)

    def run(image: Tensor) -> Tuple[Tensor, ...]:
        outs = session.run(None, {'image': image.contiguous().numpy()})
        return tuple(torch.from_numpy(o) for o in outs)
    return run


def _torch_runner(path: str):
    import torchvision  # noqa: F401  (its nms and roi_align ops, to load)
    module = torch.export.load(path).module()

    def run(image: Tensor) -> Tuple[Tensor, ...]:
        with torch.no_grad():
            return tuple(module(image.contiguous()))
    return run


def detections_to_sample(outputs: Sequence[Tensor], sample) -> None:
    """Boxes in input pixels -> ``sample.pred_instances`` in the original
    image's pixels, clipped to the unpadded image, as mmdet's
    ``predict(rescale=True)``."""
    from mmengine.structures import InstanceData
    boxes, scores, labels = (o.clone() for o in outputs[:3])
    height, width = sample.img_shape[:2]
    boxes[:, 0::2] = boxes[:, 0::2].clamp(0, width)
    boxes[:, 1::2] = boxes[:, 1::2].clamp(0, height)
    scale_w, scale_h = sample.metainfo.get('scale_factor', (1., 1.))
    boxes = boxes / boxes.new_tensor([scale_w, scale_h, scale_w, scale_h])
    sample.pred_instances = InstanceData(bboxes=boxes, scores=scores,
                                         labels=labels)


def segmentation_to_sample(outputs: Sequence[Tensor], sample,
                           align_corners: bool) -> None:
    """Logits without the padding, resized to the original image, and
    their argmax, as mmseg's ``postprocess_result``."""
    from mmengine.structures import PixelData
    logits = outputs[0]
    left, right, top, bottom = sample.metainfo.get('padding_size',
                                                   [0, 0, 0, 0])
    height, width = logits.shape[2:]
    logits = logits[:, :, top:height - bottom, left:width - right]
    logits = F.interpolate(logits, size=sample.ori_shape, mode='bilinear',
                           align_corners=align_corners)[0]
    sample.seg_logits = PixelData(data=logits)
    sample.pred_sem_seg = PixelData(data=logits.argmax(dim=0, keepdim=True))


@MMENGINE_MODELS.register_module()
class DeployedModel(BaseModel):
    """A shipped detector or segmentor file as an mmengine model (predict
    only).

    Args:
        path: the ``.onnx`` or ``.pt2`` file.
        data_preprocessor: the config's ``model.data_preprocessor``;
            default: the one in the file's metadata.
        config: a config file whose task and model settings apply to a file
            without metadata (an fp32 ONNX file of ``export_model.py``
            before ``--precision``); default: the file's own.
        threads: onnxruntime's intra-op threads (default torch's).
    """

    def __init__(self, path: str, data_preprocessor: Optional[dict] = None,
                 config: Optional[str] = None,
                 threads: Optional[int] = None) -> None:
        from mmengine.config import Config
        from mmengine.registry import DefaultScope
        if not is_shipped_file(path):
            raise ValueError(f'{path!r} is not a shipped model; expected one '
                             f'of {SHIPPED_EXTENSIONS}')
        meta = read_metadata(path) or {}
        if config is not None:
            cfg = read_config(config)
        elif 'config' in meta:
            cfg = Config.fromstring(meta['config'], '.py')
        else:
            raise ValueError(f'{path} holds no metadata (exported before '
                             '--precision); pass its config')
        self.scope = task_of(cfg)
        if self.scope not in ('mmdet', 'mmseg'):
            raise ValueError(f'the config is {self.scope}; shipped files are '
                             "detectors ('mmdet') or segmentors ('mmseg')")
        if meta and meta['scope'] != self.scope:
            raise ValueError(f"{path} is a {meta['scope']} model; the config "
                             f'is {self.scope}')
        head = cfg.model.get('decode_head') or cfg.model.get(
            'roi_head', {}).get('bbox_head', {})
        if meta.get('num_classes') not in (None, head.get('num_classes')):
            raise ValueError(f"{path} predicts {meta['num_classes']} classes;"
                             f" the config's model {head.get('num_classes')}")
        with DefaultScope.overwrite_default_scope(self.scope):
            preprocessor = model_registry(self.scope).build(
                data_preprocessor or cfg.model.data_preprocessor)
        super().__init__(data_preprocessor=preprocessor)
        self.path, self.cfg, self.metadata = path, cfg, meta
        self.precision = meta.get('precision', 'fp32')
        self.align_corners = cfg.model.get('decode_head', {}).get(
            'align_corners', False)
        self.run = (_torch_runner(path) if path.endswith('.pt2')
                    else _onnx_runner(path, threads))
        slow = slow_precision_warning(self.precision)
        if slow:
            from mmengine.logging import print_log
            print_log(slow, logger='current', level=30)

    def outputs(self, image: Tensor) -> Tuple[Tensor, ...]:
        """The file's outputs for one preprocessed image ``(1, 3, H, W)``:
        ``(boxes, scores, labels)`` or ``(logits, labels)``."""
        return self.run(image.float())

    def forward(self, inputs: Tensor, data_samples=None,
                mode: str = 'predict'):
        if mode != 'predict':
            raise ValueError(f"mode={mode!r}: a deployed model only "
                             "predicts (mode='predict')")
        return self.predict(inputs, data_samples)

    def predict(self, inputs: Tensor, data_samples: list) -> list:
        """``data_samples`` with their predictions, each image of the
        batch ``inputs`` ``(B, 3, H, W)`` run alone at its padded size."""
        for image, sample in zip(inputs, data_samples):
            pad_h, pad_w = sample.metainfo.get('pad_shape',
                                               image.shape[1:])[:2]
            outs = self.outputs(image[None, :, :pad_h, :pad_w])
            if self.scope == 'mmdet':
                detections_to_sample(outs, sample)
            else:
                segmentation_to_sample(outs, sample, self.align_corners)
        return data_samples

    def predict_image(self, image: Union[str, np.ndarray]):
        """One image file (or BGR ``uint8`` array) through the config's test
        pipeline (annotations not loaded) and the file: a ``DetDataSample``
        or ``SegDataSample``."""
        return self.test_step(image_batch(self.cfg, self.scope, image))[0]


#: Test pipeline steps that read or check annotations: left out when an
#: image is run alone.
ANNOTATION_STEPS = ('LoadAnnotations', 'CheckSegMap')


def image_batch(cfg, scope: str, image: Union[str, np.ndarray]) -> dict:
    """A batch of one image file (or BGR ``uint8`` array) through the
    config's test pipeline, without its annotation steps: the input of a
    model's ``test_step``."""
    from mmcv.transforms import Compose
    from mmengine.dataset import pseudo_collate
    from mmengine.registry import DefaultScope
    steps = [dict(s) for s in cfg.test_dataloader.dataset.pipeline
             if s['type'].split('.')[-1] not in ANNOTATION_STEPS]
    if isinstance(image, str):
        data = dict(img_path=image, img_id=0)
    else:
        steps[0]['type'] = f'{scope}.LoadImageFromNDArray'
        data = dict(img=image, img_id=0)
    with DefaultScope.overwrite_default_scope(scope):
        return pseudo_collate([Compose(steps)(data)])


def deployed_model_config(cfg, path: str) -> None:
    """Make ``cfg`` test the shipped file ``path`` instead of a checkpoint,
    in place: ``cfg.model`` becomes a :class:`DeployedModel` with the
    config's data preprocessor, and nothing is loaded."""
    from mmengine.config import ConfigDict
    cfg.model = ConfigDict(type='DeployedModel', path=path,
                           data_preprocessor=cfg.model.data_preprocessor,
                           config=cfg.filename)
    cfg.load_from = None


__all__: List[str] = ['DeployedModel', 'SHIPPED_EXTENSIONS',
                      'deployed_model_config', 'image_batch',
                      'is_shipped_file']
