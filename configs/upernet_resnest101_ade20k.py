# UPerNet, ResNeSt-101, ADE20K 512x512, 160k iterations: the S-50 config with
# the 101-layer backbone, as mmseg's R-101 UPerNet (reference: 43.82 mIoU) is
# its R-50 config with depth 101.
_base_ = './upernet_resnest50_ade20k.py'

model = dict(backbone=_base_.resnest101_backbone)
