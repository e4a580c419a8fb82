# Cascade R-CNN with the toy Faster R-CNN's backbone, FPN and RPN
# (./_base_/toy_coco_detection.py) on the toy shapes dataset; each of the
# three stages keeps its box coder and samples 64 RoIs per image.
_base_ = [
    'mmdet::_base_/models/cascade-rcnn_r50_fpn.py',
    './_base_/toy_coco_detection.py',
]

model = dict(
    data_preprocessor=_base_.toy_data_preprocessor,
    backbone=_base_.toy_backbone,
    neck=_base_.toy_neck,
    rpn_head=_base_.toy_rpn_head,
    roi_head=dict(
        bbox_roi_extractor=_base_.toy_roi_extractor,
        bbox_head=[
            dict(stage, **_base_.toy_box_head)
            for stage in _base_.model.roi_head.bbox_head
        ]),
    train_cfg=dict(rcnn=[
        dict(stage, sampler=dict(stage['sampler'], num=64))
        for stage in _base_.model.train_cfg.rcnn
    ]))
