"""Faster R-CNN's whole test-time path as one traceable module, for ONNX.

:class:`FasterRCNNGraph` wraps a built mmdet ``TwoStageDetector`` (RPNHead +
StandardRoIHead) and calls its own backbone, neck, RPN convs, anchor
generator and box head; what mmdet does in Python loops and data-dependent
branches (per-level top-k, box decoding, NMS, RoI level assignment) is
written with ops that trace into standard ONNX: ``Sort``/``TopK`` + ``Slice``,
``NonMaxSuppression`` (``torchvision.ops.nms``) and ``RoiAlign``
(``torchvision.ops.roi_align``; ``aligned=True`` is ``half_pixel``, opset 16+).
The numbers follow mmdet's ``model.predict`` with ``rescale=False``:

* RPN, per level: sigmoid scores, the ``nms_pre`` best (sorted), deltas
  decoded onto the anchors and clipped to the image, boxes no larger than
  ``min_bbox_size`` dropped, NMS within each level (the class-offset trick
  of mmcv's ``batched_nms``), the ``max_per_img`` best kept;
* RoIs pooled from the level ``floor(log2(sqrt(area) / finest_scale))``
  (clamped to the levels), each level pooling only its own RoIs;
* box head: softmax scores, per-class decoded boxes, ``score > score_thr``,
  NMS per class, the ``max_per_img`` best.

Input: the data preprocessor's output, ``(1, 3, H, W)`` (normalized, padded);
H and W are dynamic. Outputs: ``boxes`` ``(N, 4)`` (x1, y1, x2, y2 in input
pixels), ``scores`` ``(N,)``, ``labels`` ``(N,)`` int64, best score first.
"""
import math
from typing import List, Sequence, Tuple

import torch
import torchvision
from torch import Tensor, nn

OUTPUT_NAMES = ('boxes', 'scores', 'labels')


def _require(ok: bool, what: str, value, allowed: str) -> None:
    if not ok:
        raise ValueError(f'{what} is {value!r}; ONNX export supports '
                         f'{allowed} only')


def image_size(image: Tensor) -> Tensor:
    """``(W, H, W, H)`` of ``image`` ``(B, C, H, W)`` as a float tensor that
    stays dynamic when traced (box clipping bounds): by ONNX's tracer
    (``Shape``) and by ``torch.export`` (symbolic sizes)."""
    if torch.onnx.is_in_onnx_export():
        hw = torch._shape_as_tensor(image)[2:].to(image.dtype)
    else:
        hw = torch.stack([image.new_ones(()) * s for s in image.shape[2:]])
    return hw.flip(0).repeat(2)


def decode_deltas(priors: Tensor, deltas: Tensor, coder: nn.Module,
                  size: Tensor) -> Tensor:
    """mmdet's ``DeltaXYWHBBoxCoder.decode``: ``priors`` ``(N, 4)`` moved by
    ``deltas`` ``(N, 4)`` (normalized by the coder's means and stds), width
    and height ratios clamped to ``|log(16 / 1000)|``, clipped to ``size``
    (from :func:`image_size`) when the coder clips. Returns ``(N, 4)``."""
    means = deltas.new_tensor(coder.means)
    stds = deltas.new_tensor(coder.stds)
    deltas = deltas * stds + means
    centre = (priors[:, :2] + priors[:, 2:]) * 0.5
    wh = priors[:, 2:] - priors[:, :2]
    max_ratio = abs(math.log(16 / 1000))
    centre = centre + wh * deltas[:, :2]
    wh = wh * deltas[:, 2:].clamp(min=-max_ratio, max=max_ratio).exp()
    boxes = torch.cat([centre - wh * 0.5, centre + wh * 0.5], dim=-1)
    if coder.clip_border:
        boxes = torch.min(boxes.clamp(min=0), size)
    return boxes


@torch.library.custom_op('resnest_mm::nms', mutates_args=())
def nms(boxes: Tensor, scores: Tensor, iou_threshold: float) -> Tensor:
    """``torchvision.ops.nms`` for ``torch.export``: torchvision's own fake
    kernel declares at least 2 kept boxes, which the exported program then
    asserts at run time (an image with 0 or 1 detections fails); this one
    declares 0 or more."""
    return torchvision.ops.nms(boxes, scores, iou_threshold)


@nms.register_fake
def _nms_fake(boxes: Tensor, scores: Tensor, iou_threshold: float) -> Tensor:
    kept = torch.library.get_ctx().new_dynamic_size(min=0)
    return boxes.new_empty(kept, dtype=torch.long)


def batched_nms(boxes: Tensor, scores: Tensor, groups: Tensor,
                iou_threshold: float) -> Tensor:
    """Indices kept by NMS run separately within each group, best score
    first: the boxes of group ``g`` are shifted by ``g * (max + 1)`` so that
    no two groups overlap (mmcv's ``batched_nms`` below its split size).
    The zero appended before the max keeps an empty input valid in ONNX
    Runtime; clipped boxes are >= 0, so it never changes the max. ONNX gets
    ``NonMaxSuppression`` (torchvision's op), everything else :func:`nms`."""
    top = torch.cat([boxes.reshape(-1), boxes.new_zeros(1)]).max()
    shifted = boxes + (groups.to(boxes) * (top + 1))[:, None]
    if torch.onnx.is_in_onnx_export():
        return torchvision.ops.nms(shifted, scores, iou_threshold)
    return nms(shifted, scores, iou_threshold)


def first_rows(n: int, *tensors: Tensor) -> List[Tensor]:
    """The first ``n`` rows of each tensor (all of them when there are
    fewer), dynamic in the row count for both tracers: ONNX's ``Slice``
    clamps the end itself; ``torch.export`` needs the end as a symbolic
    ``min``, or it fixes the comparison with ``n`` for the traced size."""
    if not torch.onnx.is_in_onnx_export():
        n = torch.sym_min(tensors[0].shape[0], n)
    return [t[:n] for t in tensors]


class FasterRCNNGraph(nn.Module):
    """``image (1, 3, H, W) -> (boxes, scores, labels)`` of ``detector``,
    whose test_cfg (rpn, rcnn) is read once here."""

    def __init__(self, detector: nn.Module) -> None:
        super().__init__()
        from mmdet.models.dense_heads import RPNHead
        from mmdet.models.roi_heads import StandardRoIHead
        from mmdet.models.roi_heads.roi_extractors import SingleRoIExtractor
        from mmdet.models.task_modules.coders import DeltaXYWHBBoxCoder
        rpn, roi = detector.rpn_head, detector.roi_head
        _require(type(rpn) is RPNHead, 'rpn_head', type(rpn).__name__,
                 'RPNHead')
        _require(type(roi) is StandardRoIHead and not roi.with_mask,
                 'roi_head', type(roi).__name__, 'StandardRoIHead (boxes)')
        extractor = roi.bbox_roi_extractor
        _require(type(extractor) is SingleRoIExtractor, 'bbox_roi_extractor',
                 type(extractor).__name__, 'SingleRoIExtractor')
        for layer in extractor.roi_layers:
            mode = getattr(layer, 'pool_mode', None)
            _require(type(layer).__name__ == 'RoIAlign' and mode == 'avg',
                     'roi_layer', f'{type(layer).__name__} ({mode})',
                     "RoIAlign with pool_mode='avg'")
        for name, head in (('rpn_head', rpn), ('bbox_head', roi.bbox_head)):
            coder = head.bbox_coder
            _require(type(coder) is DeltaXYWHBBoxCoder
                     and not coder.add_ctr_clamp, f'{name}.bbox_coder',
                     type(coder).__name__,
                     'DeltaXYWHBBoxCoder (no add_ctr_clamp)')
        _require(rpn.use_sigmoid_cls, 'rpn_head.loss_cls.use_sigmoid', False,
                 'True')
        _require(not roi.bbox_head.custom_cls_channels,
                 'bbox_head.loss_cls', type(roi.bbox_head.loss_cls).__name__,
                 'losses with a plain softmax')
        for stage, cfg in (('rpn', rpn.test_cfg), ('rcnn', roi.test_cfg)):
            nms = dict(cfg.nms)
            _require(nms.pop('type', 'nms') == 'nms'
                     and not nms.pop('class_agnostic', False)
                     and set(nms) <= {'iou_threshold', 'split_thr'},
                     f'test_cfg.{stage}.nms', cfg.nms,
                     "dict(type='nms', iou_threshold=...)")
        self.detector = detector
        self.rpn_cfg = rpn.test_cfg
        self.rcnn_cfg = roi.test_cfg

    def forward(self, image: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        size = image_size(image)
        feats = self.detector.extract_feat(image)
        proposals = self.proposals(feats, size)
        rois = torch.cat([torch.zeros_like(proposals[:, :1]), proposals],
                         dim=1)
        extractor = self.detector.roi_head.bbox_roi_extractor
        roi_feats = self.pool(feats[:extractor.num_inputs], rois)
        cls_score, bbox_pred = self.detector.roi_head.bbox_head(roi_feats)
        return self.detections(proposals, cls_score, bbox_pred, size)

    def proposals(self, feats: Sequence[Tensor], size: Tensor) -> Tensor:
        """RPN boxes ``(P, 4)`` of image 0, best first."""
        head, cfg = self.detector.rpn_head, self.rpn_cfg
        cls_scores, bbox_preds = head(feats)
        anchors = head.prior_generator.grid_priors(
            [c.shape[-2:] for c in cls_scores], dtype=feats[0].dtype,
            device=feats[0].device)
        nms_pre = cfg.get('nms_pre', -1)
        boxes, scores, levels = [], [], []
        for level, (cls, deltas, priors) in enumerate(
                zip(cls_scores, bbox_preds, anchors)):
            score = cls[0].permute(1, 2, 0).reshape(-1).sigmoid()
            deltas = deltas[0].permute(1, 2, 0).reshape(-1, 4)
            if nms_pre > 0:
                score, order = score.sort(descending=True)
                score, order = first_rows(nms_pre, score, order)
                deltas, priors = deltas[order], priors[order]
            boxes.append(decode_deltas(priors, deltas, head.bbox_coder, size))
            scores.append(score)
            levels.append(torch.full_like(score, level, dtype=torch.long))
        boxes, scores, levels = (torch.cat(boxes), torch.cat(scores),
                                 torch.cat(levels))
        min_size = cfg.get('min_bbox_size', -1)
        if min_size >= 0:
            wh = boxes[:, 2:] - boxes[:, :2]
            keep = ((wh[:, 0] > min_size)
                    & (wh[:, 1] > min_size)).nonzero()[:, 0]
            boxes, scores, levels = boxes[keep], scores[keep], levels[keep]
        keep = batched_nms(boxes, scores, levels, cfg.nms.iou_threshold)
        return boxes[keep[:cfg.max_per_img]]

    def pool(self, feats: Sequence[Tensor], rois: Tensor) -> Tensor:
        """``(R, C, h, w)`` features of ``rois`` ``(R, 5)``, each pooled
        from the level its size maps to (``SingleRoIExtractor``): each level
        pools only its own RoIs, and the results are put back in the RoIs'
        order."""
        extractor = self.detector.roi_head.bbox_roi_extractor
        levels = extractor.map_roi_levels(rois, len(feats))
        pooled, order = [], []
        for level, (feat, layer) in enumerate(zip(feats,
                                                  extractor.roi_layers)):
            index = (levels == level).nonzero()[:, 0]
            pooled.append(torchvision.ops.roi_align(
                feat, rois[index], layer.output_size, layer.spatial_scale,
                layer.sampling_ratio, layer.aligned))
            order.append(index)
        return torch.cat(pooled)[torch.cat(order).argsort()]

    def detections(self, proposals: Tensor, cls_score: Tensor,
                   bbox_pred: Tensor, size: Tensor
                   ) -> Tuple[Tensor, Tensor, Tensor]:
        """Per-class boxes of the ``R`` proposals, thresholded, NMS'ed per
        class, best ``max_per_img`` first."""
        head, cfg = self.detector.roi_head.bbox_head, self.rcnn_cfg
        num_classes = head.num_classes
        scores = cls_score.softmax(dim=-1)[:, :num_classes]
        labels = torch.zeros_like(scores, dtype=torch.long) + torch.arange(
            num_classes)
        scores, labels = scores.reshape(-1), labels.reshape(-1)
        per_roi = 1 if head.reg_class_agnostic else num_classes
        boxes = decode_deltas(proposals.repeat_interleave(per_roi, dim=0),
                              bbox_pred.reshape(-1, 4), head.bbox_coder, size)
        boxes = boxes.reshape(-1, per_roi, 4).expand(-1, num_classes, 4)
        boxes = boxes.reshape(-1, 4)
        keep = (scores > cfg.score_thr).nonzero()[:, 0]
        boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
        keep = batched_nms(boxes, scores, labels, cfg.nms.iou_threshold)
        keep = keep[:cfg.max_per_img]
        return boxes[keep], scores[keep], labels[keep]
