# DeepLabV3+, ResNeSt-101-D8, Cityscapes 512x1024, 80k iterations, batch 8.
# mmseg reference: 79.62 mIoU, 80.27 with flip + multi-scale (--tta).
_base_ = [
    'mmseg::deeplabv3plus/deeplabv3plus_r101-d8_4xb2-80k_cityscapes-512x1024.py',  # noqa: E501
    './_base_/resnest_segmentation.py',
]

model = dict(pretrained=None, backbone=_base_.resnest101_backbone)
