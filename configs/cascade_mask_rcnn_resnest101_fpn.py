# Cascade Mask R-CNN, ResNeSt-101 (mmdet reference: 47.7 box AP, 41.4 mask AP).
_base_ = './cascade_mask_rcnn_resnest50_fpn.py'

model = dict(backbone=_base_.resnest101_backbone)
