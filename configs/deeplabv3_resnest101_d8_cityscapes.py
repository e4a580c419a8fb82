# DeepLabV3, ResNeSt-101-D8, Cityscapes 512x1024 crops, 80k iterations,
# batch 8 (4 GPUs x 2), SyncBN: mmseg's recipe.
# mmseg reference: 79.67 mIoU, 80.51 with flip + multi-scale (--tta).
_base_ = [
    'mmseg::deeplabv3/deeplabv3_r101-d8_4xb2-80k_cityscapes-512x1024.py',
    './_base_/resnest_segmentation.py',
]

model = dict(pretrained=None, backbone=_base_.resnest101_backbone)
