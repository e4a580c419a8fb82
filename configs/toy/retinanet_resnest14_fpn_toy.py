# RetinaNet with the toy Faster R-CNN's backbone and 64-channel FPN
# (./_base_/toy_coco_detection.py) on the toy shapes dataset: a one-stage
# detector that learns on a CPU in about two minutes.
_base_ = [
    'mmdet::_base_/models/retinanet_r50_fpn.py',
    './_base_/toy_coco_detection.py',
]

model = dict(
    data_preprocessor=_base_.toy_data_preprocessor,
    backbone=_base_.toy_backbone,
    neck=_base_.toy_neck,
    bbox_head=dict(
        num_classes=3,
        in_channels=64,
        feat_channels=64,
        stacked_convs=2,
        # GN in the head: with 64-channel convs RetinaNet's std-0.01 init
        # shrinks the signal ~5x per conv and classification does not start
        # (0.030 mAP after 12 epochs without GN, 0.132 with)
        norm_cfg=dict(type='GN', num_groups=16, requires_grad=True),
        # anchors from 16 px at stride 8 (the objects are 12-60 px)
        anchor_generator=dict(octave_base_scale=2)))
# RetinaNet's focal loss at lr 0.02 (the toy base) is unstable from scratch
optim_wrapper = dict(
    optimizer=dict(lr=0.01), clip_grad=dict(max_norm=35, norm_type=2))
