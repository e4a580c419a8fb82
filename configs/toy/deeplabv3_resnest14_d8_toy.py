# DeepLabV3 with a quarter-width ResNeSt-14 (16-channel base) at output
# stride 8, from scratch, on the toy ADE20K-format dataset
# (docs/en/toy_datasets.md). BN (one process), a 64-channel ASPP whose rates
# (1, 3, 6, 9) span the 12-16 px feature maps of 96-128 px inputs as mmseg's
# (1, 12, 24, 36) span the 64 px maps of 512 px crops.
_base_ = [
    'mmseg::_base_/models/deeplabv3_r50-d8.py',
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
        in_channels=512,
        channels=64,
        dilations=(1, 3, 6, 9),
        num_classes=_base_.num_classes,
        norm_cfg=norm_cfg),
    auxiliary_head=dict(
        in_channels=256,
        channels=32,
        num_classes=_base_.num_classes,
        norm_cfg=norm_cfg))
