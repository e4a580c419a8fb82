# What mmseg's published ResNeSt segmentation recipe (mmseg configs/resnest)
# changes in its ResNet-V1c D8 configs: only the backbone. ResNeSt with the
# deep stem, radix 2 and avg-down stride, from ImageNet ResNeSt weights.
# Output stride 8 (strides (1, 2, 1, 1), dilations (1, 1, 2, 4),
# contract_dilation), SyncBN, heads, data, schedule and TTA are the base's.
# On one process (no --launcher) mmengine's Runner turns SyncBN into BN.
custom_imports = dict(imports=['resnest_mm'], allow_failed_imports=False)

# Merged into the base's ResNetV1c dict. The weights come through init_cfg,
# so the segmentor's `pretrained` (the ResNet-V1c weights) must be None.
resnest101_backbone = dict(
    type='ResNeSt',
    depth=101,
    stem_channels=128,
    radix=2,
    reduction_factor=4,
    avg_down_stride=True,
    init_cfg=dict(type='Pretrained', checkpoint='open-mmlab://resnest101'))

resnest50_backbone = dict(
    resnest101_backbone,
    depth=50,
    stem_channels=64,
    init_cfg=dict(type='Pretrained', checkpoint='open-mmlab://resnest50'))
