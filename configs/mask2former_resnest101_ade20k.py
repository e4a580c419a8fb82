# Mask2Former, ResNeSt-101, ADE20K 512x512, 160k iterations: the S-50 config
# with the 101-layer backbone, as mmseg's R-101 Mask2Former (reference: 48.60
# mIoU) is its R-50 config with depth 101.
_base_ = './mask2former_resnest50_ade20k.py'

model = dict(backbone=_base_.resnest101_backbone)
