# DeepLabV3, ResNeSt-101 at output stride 8 (D8), ADE20K 512x512 crops,
# 160k iterations, batch 16 (4 GPUs x 4), SyncBN: mmseg's recipe.
# mmseg reference: 45.71 mIoU, 46.59 with flip + multi-scale (--tta);
# the paper: 46.91.
_base_ = [
    'mmseg::deeplabv3/deeplabv3_r101-d8_4xb4-160k_ade20k-512x512.py',
    './_base_/resnest_segmentation.py',
]

model = dict(pretrained=None, backbone=_base_.resnest101_backbone)
