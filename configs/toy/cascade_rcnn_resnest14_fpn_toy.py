# Cascade R-CNN with the toy Faster R-CNN's half-width ResNeSt-14, FPN and
# heads (64 channels, anchors from 16 px), on the toy shapes dataset.
_base_ = [
    'mmdet::_base_/models/cascade-rcnn_r50_fpn.py',
    './_base_/toy_coco_detection.py',
]

model = dict(
    data_preprocessor=dict(
        mean=[123.68, 116.779, 103.939],
        std=[58.393, 57.12, 57.375]),
    backbone=dict(
        type='ResNeSt',
        depth=14,
        stem_channels=32,
        base_channels=32,
        frozen_stages=-1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False,
        init_cfg=None),
    neck=dict(in_channels=[128, 256, 512, 1024], out_channels=64),
    rpn_head=dict(
        in_channels=64,
        feat_channels=64,
        anchor_generator=dict(scales=[4])),
    roi_head=dict(
        bbox_roi_extractor=dict(
            roi_layer=dict(sampling_ratio=2), out_channels=64),
        bbox_head=[
            dict(stage, in_channels=64, fc_out_channels=256, num_classes=3)
            for stage in _base_.model.roi_head.bbox_head
        ]),
    train_cfg=dict(rcnn=[
        dict(stage, sampler=dict(stage['sampler'], num=64))
        for stage in _base_.model.train_cfg.rcnn
    ]))
