# FCN, ResNeSt-101-D8, ADE20K 512x512, 160k iterations, batch 16.
# mmseg reference: 45.62 mIoU, 46.16 with flip + multi-scale (--tta).
_base_ = [
    'mmseg::fcn/fcn_r101-d8_4xb4-160k_ade20k-512x512.py',
    './_base_/resnest_segmentation.py',
]

model = dict(pretrained=None, backbone=_base_.resnest101_backbone)
