# DeepLabV3+, ResNeSt-101-D8, ADE20K 512x512, 160k iterations, batch 16.
# mmseg reference: 46.47 mIoU, 47.27 with flip + multi-scale (--tta).
_base_ = [
    'mmseg::deeplabv3plus/deeplabv3plus_r101-d8_4xb4-160k_ade20k-512x512.py',
    './_base_/resnest_segmentation.py',
]

model = dict(pretrained=None, backbone=_base_.resnest101_backbone)
