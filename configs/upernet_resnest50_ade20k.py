# UPerNet, ResNeSt-50 (output stride 32), ADE20K 512x512, 160k iterations,
# batch 16: mmseg's R-50 UPerNet (reference: 42.05 mIoU) with a ResNeSt-50
# backbone; mmseg publishes no ResNeSt UPerNet.
_base_ = [
    'mmseg::upernet/upernet_r50_4xb4-160k_ade20k-512x512.py',
    './_base_/resnest_segmentation.py',
]

model = dict(pretrained=None, backbone=_base_.resnest50_backbone)
