# Cascade R-CNN, ResNeSt-101 (mmdet reference: 46.8 box AP).
_base_ = './cascade_rcnn_resnest50_fpn.py'

model = dict(backbone=_base_.resnest101_backbone)
