"""Whole detectors and segmentors from their configs to ONNX, and the
onnxruntime-vs-PyTorch check on one image.

The model is built from the config under its ``default_scope`` (``mmdet`` or
``mmseg``) through that toolbox's registry, exported with torch's
TorchScript-based exporter (``dynamo=False``) at opset 17 (RoiAlign's
``half_pixel`` mode, which mmcv's ``aligned=True`` needs, is opset 16+), and
compared with the toolbox's own ``model.predict`` on the same preprocessed
tensor. The graphs: :mod:`resnest_mm.deployment.detector_onnx`,
:mod:`resnest_mm.deployment.segmentor_onnx`.
"""
import importlib
import os
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor, nn

from resnest_mm.deployment.detector_onnx import FasterRCNNGraph
from resnest_mm.deployment.detector_onnx import \
    OUTPUT_NAMES as DETECTOR_OUTPUTS
from resnest_mm.deployment.segmentor_onnx import SegmentorGraph
from resnest_mm.deployment.segmentor_onnx import \
    OUTPUT_NAMES as SEGMENTOR_OUTPUTS
from resnest_mm.engine.run_config import read_config, task_of


def load_config(config: str, cfg_options: Optional[dict] = None):
    """``(Config, scope)``: the config file with ``cfg_options`` merged, and
    its ``default_scope``, which must be ``'mmdet'`` or ``'mmseg'``."""
    cfg = read_config(config, cfg_options)
    return cfg, task_of(cfg)


def model_registry(scope: str):
    """``mmdet.registry.MODELS`` or ``mmseg.registry.MODELS``."""
    return importlib.import_module(f'{scope}.registry').MODELS


def build_model(config: str, checkpoint: Optional[str] = None,
                cfg_options: Optional[dict] = None) -> Tuple[nn.Module, str]:
    """The config's model (eval mode, weights from ``checkpoint`` if given)
    and its toolbox scope, ``'mmdet'`` or ``'mmseg'``."""
    from mmengine.registry import DefaultScope
    from mmengine.runner import load_checkpoint
    cfg, scope = load_config(config, cfg_options)
    registry = model_registry(scope)
    with DefaultScope.overwrite_default_scope(scope):
        model = registry.build(cfg.model)
    if checkpoint is not None:
        load_checkpoint(model, checkpoint, map_location='cpu', strict=True,
                        logger='silent')
    return model.eval(), scope


def graph_of(model: nn.Module, scope: str) -> nn.Module:
    """The traceable test-time graph of ``model``; ``ValueError`` naming the
    part it cannot express (another detector, head, NMS ...)."""
    if scope == 'mmdet':
        from mmdet.models.detectors import FasterRCNN
        if type(model) is not FasterRCNN:
            raise ValueError(
                f'detector is {type(model).__name__}; export supports '
                'FasterRCNN (RPNHead + StandardRoIHead, boxes) only')
        return FasterRCNNGraph(model)
    if scope == 'mmseg':
        return SegmentorGraph(model)
    raise ValueError(f"scope is {scope!r}; export supports 'mmdet' "
                     "(Faster R-CNN) and 'mmseg' (EncoderDecoder) only")


def export(model: nn.Module, scope: str, path: str, shape: Sequence[int],
           opset: int = 17) -> Tuple[str, ...]:
    """Write ``model``'s test-time graph (:func:`graph_of`), traced on a
    ``(1, 3, *shape)`` image, to ``path``; returns the output names. Height
    and width are dynamic (and the segmentor's batch; the detector's batch
    is 1)."""
    graph = graph_of(model, scope)
    if scope == 'mmdet':
        names = DETECTOR_OUTPUTS
        dynamic = {'image': {2: 'height', 3: 'width'}}
        dynamic.update({n: {0: 'detections'} for n in names})
    else:
        names = SEGMENTOR_OUTPUTS
        dynamic = {'image': {0: 'batch', 2: 'height', 3: 'width'},
                   'logits': {0: 'batch', 2: 'height', 3: 'width'},
                   'labels': {0: 'batch', 1: 'height', 2: 'width'}}
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    image = torch.randn(1, 3, *shape)
    with torch.no_grad():
        torch.onnx.export(graph.eval(), (image, ), path,
                          input_names=['image'], output_names=list(names),
                          dynamic_axes=dynamic, opset_version=opset,
                          dynamo=False)
    return names


def preprocess(model: nn.Module, image: np.ndarray) -> Tensor:
    """``(1, 3, H', W')`` model input of a BGR ``uint8`` ``(H, W, 3)`` image
    through the model's data preprocessor (normalization, channel order,
    test-time padding)."""
    chw = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))
    with torch.no_grad():
        return model.data_preprocessor({'inputs': [chw]}, False)['inputs']


def pytorch_outputs(model: nn.Module, scope: str,
                    image: Tensor) -> Tuple[Tensor, ...]:
    """The toolbox's own ``model.predict`` on a preprocessed ``image``
    ``(1, 3, H, W)``, as the exported graph's outputs: boxes, scores,
    labels for a detector (no rescaling); logits ``(1, C, H, W)`` and
    labels ``(1, H, W)`` for a segmentor."""
    shape = tuple(image.shape[2:])
    with torch.no_grad():
        if scope == 'mmdet':
            from mmdet.structures import DetDataSample
            sample = DetDataSample(metainfo=dict(img_shape=shape,
                                                 scale_factor=(1., 1.)))
            out = model.predict(image, [sample], rescale=False)[0]
            return (out.pred_instances.bboxes, out.pred_instances.scores,
                    out.pred_instances.labels)
        from mmseg.structures import SegDataSample
        sample = SegDataSample(metainfo=dict(img_shape=shape, ori_shape=shape,
                                             pad_shape=shape))
        out = model.predict(image, [sample])[0]
        return out.seg_logits.data[None], out.pred_sem_seg.data.long()


def compare_with_onnxruntime(model: nn.Module, scope: str, path: str,
                             image: Tensor) -> Dict[str, float]:
    """onnxruntime's outputs for ``image`` against :func:`pytorch_outputs`.

    Detector: ``detections`` / ``onnx_detections`` (counts) and, when they
    agree, the largest box and score differences and the fraction of equal
    labels over paired detections (:func:`detection_differences`).
    Segmentor: ``max_logit_diff`` and the fraction of equal labels.
    """
    import onnxruntime as ort
    session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    got = [torch.from_numpy(o)
           for o in session.run(None, {'image': image.numpy()})]
    want = pytorch_outputs(model, scope, image)
    if scope == 'mmseg':
        return {'max_logit_diff': (got[0] - want[0]).abs().max().item(),
                'labels_equal': (got[1] == want[1]).float().mean().item()}
    return detection_differences(got, want)


def detection_differences(got: Sequence[Tensor],
                          want: Sequence[Tensor]) -> Dict[str, float]:
    """Compare two detection lists ``(boxes (N, 4), scores (N,), labels
    (N,))``: their counts and, when they agree, the largest box and score
    differences and the fraction of equal labels over matched pairs.

    Each wanted detection, best first, is paired with the closest unpaired
    one (largest box coordinate difference plus score difference): two
    runtimes may order detections of equal score either way, which a
    row-by-row comparison would report as different boxes.
    """
    report = {'detections': len(want[0]), 'onnx_detections': len(got[0])}
    if len(want[0]) != len(got[0]) or not len(got[0]):
        return report
    cost = ((want[0][:, None] - got[0][None]).abs().amax(-1)
            + (want[1][:, None] - got[1][None]).abs())
    pairs = []
    for row in cost:
        pairs.append(int(row.argmin()))
        cost[:, pairs[-1]] = float('inf')
    got = [g[pairs] for g in got[:3]]
    report.update(
        max_box_diff=(got[0] - want[0]).abs().max().item(),
        max_score_diff=(got[1] - want[1]).abs().max().item(),
        labels_equal=(got[2] == want[2]).float().mean().item())
    return report


def _iou(a: Tensor, b: Tensor) -> Tensor:
    """Pairwise IoU of boxes ``a`` ``(N, 4)`` and ``b`` ``(M, 4)``."""
    import torchvision
    return torchvision.ops.box_iou(a, b)


def _pair_one_way(src: Sequence[Tensor], dst: Sequence[Tensor],
                  min_score: float, score_margin: float,
                  min_iou: float) -> Dict[str, float]:
    """Each detection of ``src`` with a score of at least ``min_score``,
    best first, takes the unpaired one of ``dst`` (score at least
    ``min_score - score_margin``) of least cost, the largest box coordinate
    difference plus the score difference; the pair counts when its boxes
    overlap by ``min_iou`` and its labels agree."""
    confident = (src[1] >= min_score).nonzero()[:, 0]
    candidates = (dst[1] >= min_score - score_margin).nonzero()[:, 0]
    free = torch.ones(len(candidates), dtype=torch.bool)
    paired, score_diff, worst_iou = 0, 0.0, 1.0
    if len(confident) and len(candidates):
        boxes, cand = src[0][confident], dst[0][candidates]
        cost = ((boxes[:, None] - cand[None]).abs().amax(-1)
                + (src[1][confident][:, None]
                   - dst[1][candidates][None]).abs())
        iou = _iou(boxes, cand)
        for i in range(len(confident)):
            row = cost[i].masked_fill(~free, float('inf'))
            j = int(row.argmin())
            if not free[j]:
                break
            free[j] = False
            same = (src[2][confident[i]] == dst[2][candidates[j]]).item()
            if iou[i, j] >= min_iou and same:
                paired += 1
                score_diff = max(score_diff, abs(
                    src[1][confident[i]] - dst[1][candidates[j]]).item())
                worst_iou = min(worst_iou, iou[i, j].item())
    return dict(confident=len(confident), paired=paired,
                max_score_diff=score_diff, min_iou=worst_iou)


def pair_detections(got: Sequence[Tensor], want: Sequence[Tensor],
                    min_score: float = 0.3, score_margin: float = 0.1,
                    min_iou: float = 0.5) -> Dict[str, float]:
    """Match two detection lists ``(boxes (N, 4), scores (N,), labels
    (N,))`` that need not have equal lengths (an int8 model's against the
    fp32 model's), both ways, by box and score.

    The confident detections (score >= ``min_score``) of each side are
    paired with the other side's (score >= ``min_score - score_margin``, so
    a score just across the line on one side still pairs), see
    :func:`_pair_one_way`. Returns, for ``want`` -> ``got`` and ``got`` ->
    ``want``: confident counts, paired counts (same label, IoU >=
    ``min_iou``), the largest score difference and the least IoU of a pair.
    A model without NMS fails this: its duplicates find no partner.
    """
    forward = _pair_one_way(want, got, min_score, score_margin, min_iou)
    backward = _pair_one_way(got, want, min_score, score_margin, min_iou)
    return dict(want_confident=forward['confident'],
                want_paired=forward['paired'],
                got_confident=backward['confident'],
                got_paired=backward['paired'],
                paired_max_score_diff=max(forward['max_score_diff'],
                                          backward['max_score_diff']),
                paired_min_iou=min(forward['min_iou'], backward['min_iou']))
