# What mmdet's published ResNeSt detection recipe changes in its R-50 configs
# (Faster S-50 42.0 / S-101 44.5, Cascade S-50 44.5 / S-101 46.8 box AP):
# the ResNeSt backbone with SyncBN and no frozen BN, SyncBN in the box head
# (Shared4Conv1FC), ResNeSt's RGB normalisation and multi-scale training.
# The detector configs combine this with an mmdet:: base and pick from it.
# On one process (no --launcher) mmengine's Runner turns SyncBN into BN.
custom_imports = dict(imports=['resnest_mm'], allow_failed_imports=False)

norm_cfg = dict(type='SyncBN', requires_grad=True)

resnest_data_preprocessor = dict(
    mean=[123.68, 116.779, 103.939],
    std=[58.393, 57.12, 57.375],
    bgr_to_rgb=True)

# Merged into the base's ResNet-50 dict: out_indices (0-3), frozen_stages=1
# and style='pytorch' come from there.
resnest50_backbone = dict(
    type='ResNeSt',
    depth=50,
    stem_channels=64,
    radix=2,
    reduction_factor=4,
    avg_down_stride=True,
    norm_cfg=norm_cfg,
    norm_eval=False,
    init_cfg=dict(type='Pretrained', checkpoint='open-mmlab://resnest50'))

resnest101_backbone = dict(
    resnest50_backbone,
    depth=101,
    stem_channels=128,
    init_cfg=dict(type='Pretrained', checkpoint='open-mmlab://resnest101'))

shared4conv1fc_head = dict(
    type='Shared4Conv1FCBBoxHead', conv_out_channels=256, norm_cfg=norm_cfg)

# Box-only detectors: a scale drawn from [640, 800] (short side) per image.
ms_range_resize = dict(
    type='RandomResize', scale=[(1333, 640), (1333, 800)], keep_ratio=True)
# Mask detectors: one of six short sides, 640 to 800.
ms_choice_resize = dict(
    type='RandomChoiceResize',
    scales=[(1333, s) for s in range(640, 801, 32)],
    keep_ratio=True)
