# Faster R-CNN, ResNeSt-101 (mmdet reference: 44.5 box AP).
_base_ = './faster_rcnn_resnest50_fpn.py'

model = dict(backbone=_base_.resnest101_backbone)
