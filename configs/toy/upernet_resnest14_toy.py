# UPerNet with the toy DeepLabV3's quarter-width ResNeSt-14 (16-channel base)
# at output stride 32, from scratch, on the toy ADE20K-format dataset. BN (one
# process), 64-channel UPerHead whose pyramid pooling (1, 2, 3) fits the 3-4
# px top map of 96-128 px inputs.
_base_ = [
    'mmseg::_base_/models/upernet_r50.py',
    './_base_/toy_ade20k_segmentation.py',
]

norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    data_preprocessor=dict(size=_base_.crop_size),
    pretrained=None,
    backbone=dict(
        type='ResNeSt',
        depth=14,
        stem_channels=32,
        base_channels=16,
        norm_cfg=norm_cfg,
        init_cfg=None),
    decode_head=dict(
        in_channels=[64, 128, 256, 512],
        channels=64,
        pool_scales=(1, 2, 3),
        num_classes=_base_.num_classes,
        norm_cfg=norm_cfg),
    auxiliary_head=dict(
        in_channels=256,
        channels=32,
        num_classes=_base_.num_classes,
        norm_cfg=norm_cfg))
