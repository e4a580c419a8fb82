# Data, schedule and runtime for the toy detection configs: the COCO-format
# shapes dataset of `python tools/misc/make_toy_data.py coco` (128 px images,
# circles / squares / triangles), sized to train in minutes on 2 CPU cores.
_base_ = [
    'mmdet::_base_/datasets/coco_detection.py',
    'mmdet::_base_/default_runtime.py',
    './toy_resnest14.py',
]
custom_imports = dict(imports=['resnest_mm'], allow_failed_imports=False)

data_root = 'data/toy_coco/'
metainfo = dict(classes=('circle', 'square', 'triangle'))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(128, 128), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(128, 128), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                    'scale_factor')),
]
train_dataloader = dict(
    batch_size=8,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/instances_train2017.json',
        data_prefix=dict(img='train2017/'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=8,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/instances_val2017.json',
        data_prefix=dict(img='val2017/'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val2017.json')
test_evaluator = val_evaluator

max_epochs = 12
train_cfg = dict(
    type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=12)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.02, momentum=0.9, weight_decay=1e-4))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=50),
    dict(type='MultiStepLR', by_epoch=True, milestones=[9, 11], gamma=0.1),
]
default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(interval=4, max_keep_ckpts=3))
auto_scale_lr = dict(enable=False, base_batch_size=8)
randomness = dict(seed=0)

# The toy detectors' shared model parts: the half-width ResNeSt-14 of
# ./toy_resnest14.py (toy_backbone), a 64-channel FPN and RPN with anchors
# from 16 px (the objects are 12-60 px), RoIs pooled from 2x2 samples per bin.
toy_data_preprocessor = dict(
    mean=[123.68, 116.779, 103.939], std=[58.393, 57.12, 57.375])
toy_neck = dict(in_channels=[128, 256, 512, 1024], out_channels=64)
toy_rpn_head = dict(
    in_channels=64, feat_channels=64, anchor_generator=dict(scales=[4]))
toy_roi_extractor = dict(roi_layer=dict(sampling_ratio=2), out_channels=64)
toy_box_head = dict(in_channels=64, fc_out_channels=256, num_classes=3)
