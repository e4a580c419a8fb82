# Mask R-CNN, ResNeSt-101 (mmdet reference: 45.2 box AP, 40.2 mask AP).
_base_ = './mask_rcnn_resnest50_fpn.py'

model = dict(backbone=_base_.resnest101_backbone)
