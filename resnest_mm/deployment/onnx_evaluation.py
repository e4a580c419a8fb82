"""A config's validation set and metric, with onnxruntime as the model.

:func:`evaluate_onnx` runs the config's ``val_dataloader`` through the
model's data preprocessor (built alone, no weights), feeds each image to an
exported graph (:mod:`resnest_mm.deployment.model_export`), turns the
outputs into ``DetDataSample.pred_instances`` / ``SegDataSample``
predictions as mmdet's and mmseg's ``predict`` would, and scores them with
the config's ``val_evaluator``: the numbers ``tools/test.py`` prints for the
PyTorch model.
"""
from typing import Dict, Optional

import torch
import torch.nn.functional as F

from resnest_mm.deployment.model_export import load_config, model_registry


def _detections(outputs, sample) -> None:
    """Boxes (input pixels, clipped to the unpadded image) back to the
    original image, as ``predict(rescale=True)``."""
    from mmengine.structures import InstanceData
    boxes, scores, labels = (torch.from_numpy(o) for o in outputs)
    height, width = sample.img_shape[:2]
    boxes[:, 0::2] = boxes[:, 0::2].clamp(0, width)
    boxes[:, 1::2] = boxes[:, 1::2].clamp(0, height)
    scale_w, scale_h = sample.metainfo.get('scale_factor', (1., 1.))
    boxes = boxes / boxes.new_tensor([scale_w, scale_h, scale_w, scale_h])
    sample.pred_instances = InstanceData(bboxes=boxes, scores=scores,
                                         labels=labels)


def _segmentation(outputs, sample, align_corners: bool) -> None:
    """Logits without the padding, resized to the original image, and
    their argmax, as mmseg's ``postprocess_result``."""
    from mmengine.structures import PixelData
    logits = torch.from_numpy(outputs[0])
    left, right, top, bottom = sample.metainfo.get('padding_size',
                                                   [0, 0, 0, 0])
    height, width = logits.shape[2:]
    logits = logits[:, :, top:height - bottom, left:width - right]
    logits = F.interpolate(logits, size=sample.ori_shape, mode='bilinear',
                           align_corners=align_corners)[0]
    sample.seg_logits = PixelData(data=logits)
    sample.pred_sem_seg = PixelData(data=logits.argmax(dim=0, keepdim=True))


def evaluate_onnx(config: str, onnx_path: str,
                  cfg_options: Optional[dict] = None) -> Dict[str, float]:
    """The config's ``val_evaluator`` metrics of ``onnx_path`` on the
    config's ``val_dataloader`` (images one at a time; a detector's boxes
    are clipped to the unpadded image after NMS, mmdet's before: the same
    when the preprocessor adds no padding)."""
    import onnxruntime as ort
    from mmengine.evaluator import Evaluator
    from mmengine.registry import DefaultScope
    from mmengine.runner import Runner
    cfg, scope = load_config(config, cfg_options)
    if scope == 'mmseg' and cfg.model.decode_head.get('num_classes') == 1:
        raise ValueError('decode_head.num_classes is 1; evaluation supports '
                         'softmax (argmax) segmentors only')
    align_corners = cfg.model.get('decode_head', {}).get('align_corners',
                                                         False)
    session = ort.InferenceSession(onnx_path,
                                   providers=['CPUExecutionProvider'])
    with DefaultScope.overwrite_default_scope(scope):
        preprocessor = model_registry(scope).build(
            cfg.model.data_preprocessor)
        loader = Runner.build_dataloader(cfg.val_dataloader)
        evaluator = Evaluator(cfg.val_evaluator)
        evaluator.dataset_meta = loader.dataset.metainfo
        for batch in loader:
            with torch.no_grad():
                data = preprocessor(batch, False)
            for image, sample in zip(data['inputs'], data['data_samples']):
                outputs = session.run(
                    None, {'image': image[None].contiguous().numpy()})
                if scope == 'mmdet':
                    _detections(outputs, sample)
                else:
                    _segmentation(outputs, sample, align_corners)
            evaluator.process(data['data_samples'], batch)
        return evaluator.evaluate(len(loader.dataset))
