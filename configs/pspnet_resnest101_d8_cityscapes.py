# PSPNet, ResNeSt-101-D8, Cityscapes 512x1024, 80k iterations, batch 8.
# mmseg reference: 78.57 mIoU, 79.19 with flip + multi-scale (--tta).
_base_ = [
    'mmseg::pspnet/pspnet_r101-d8_4xb2-80k_cityscapes-512x1024.py',
    './_base_/resnest_segmentation.py',
]

model = dict(pretrained=None, backbone=_base_.resnest101_backbone)
