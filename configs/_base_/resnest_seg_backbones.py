# The ResNeSt backbones of the segmentation configs, without custom_imports:
# a base such as mmseg's Mask2Former sets custom_imports itself, and two
# bases may not both set a key. Merged into the base's ResNet(V1c) dict, so
# strides, dilations, norms and out_indices come from there. The weights come
# through init_cfg, so the segmentor's `pretrained` (the ResNet-V1c weights)
# must be None.
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
