"""An mmseg ``EncoderDecoder``'s whole-image inference as one traceable
module, for ONNX.

:class:`SegmentorGraph` calls the segmentor's own backbone, neck and decode
head, then resizes the logits to the input's size (bilinear, the decode
head's ``align_corners``) and takes the label map, as mmseg's ``predict``
does for an unpadded, unflipped image whose ``ori_shape`` is its size
(``test_cfg.mode='whole'``; sliding windows are not exported).

Input: the data preprocessor's output, ``image`` ``(B, 3, H, W)``; batch,
H and W are dynamic. Outputs: ``logits`` ``(B, C, H, W)`` (before the
sigmoid when ``C == 1``) and ``labels`` ``(B, H, W)`` int64: the argmax over
classes, or ``sigmoid(logit) > decode_head.threshold`` for one channel.
"""
from typing import Tuple

import torch.nn.functional as F
from torch import Tensor, nn

OUTPUT_NAMES = ('logits', 'labels')


class SegmentorGraph(nn.Module):
    """``image (B, 3, H, W) -> (logits, labels)`` of ``segmentor``."""

    def __init__(self, segmentor: nn.Module) -> None:
        super().__init__()
        from mmseg.models.segmentors import EncoderDecoder
        if type(segmentor) is not EncoderDecoder:
            raise ValueError(f'segmentor is {type(segmentor).__name__}; ONNX '
                             'export supports EncoderDecoder only')
        mode = segmentor.test_cfg.get('mode', 'whole')
        if mode != 'whole':
            raise ValueError(f"test_cfg.mode is {mode!r}; ONNX export "
                             "supports 'whole' only")
        self.segmentor = segmentor

    def forward(self, image: Tensor) -> Tuple[Tensor, Tensor]:
        head = self.segmentor.decode_head
        logits = head(self.segmentor.extract_feat(image))
        logits = F.interpolate(logits, size=image.shape[2:], mode='bilinear',
                               align_corners=head.align_corners)
        if head.out_channels > 1:
            labels = logits.argmax(dim=1)
        else:
            labels = (logits[:, 0].sigmoid() > head.threshold).long()
        return logits, labels
