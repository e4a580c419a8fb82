# Faster R-CNN with a half-width ResNeSt-14 from scratch on the toy shapes
# dataset: the README's main command. BN (one process), 64-channel FPN and
# heads, anchors from 16 px since the objects are 12-60 px, 64 RoIs per
# image (a few objects each) pooled from 2x2 samples per bin.
_base_ = [
    'mmdet::_base_/models/faster-rcnn_r50_fpn.py',
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
        bbox_head=dict(in_channels=64, fc_out_channels=256, num_classes=3)),
    train_cfg=dict(rcnn=dict(sampler=dict(num=64))))
