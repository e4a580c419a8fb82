# Faster R-CNN with a half-width ResNeSt-14 from scratch on the toy shapes
# dataset: the README's main job. Model parts shared with the toy Cascade
# R-CNN live in ./_base_/toy_coco_detection.py; 64 RoIs per image (a few
# objects each).
_base_ = [
    'mmdet::_base_/models/faster-rcnn_r50_fpn.py',
    './_base_/toy_coco_detection.py',
]

model = dict(
    data_preprocessor=_base_.toy_data_preprocessor,
    backbone=_base_.toy_backbone,
    neck=_base_.toy_neck,
    rpn_head=_base_.toy_rpn_head,
    roi_head=dict(
        bbox_roi_extractor=_base_.toy_roi_extractor,
        bbox_head=_base_.toy_box_head),
    train_cfg=dict(rcnn=dict(sampler=dict(num=64))))
