# DINO-4scale, ResNeSt-50, 12 epochs on COCO: mmdet's R-50 DINO (reference:
# 49.0 box AP) with a ResNeSt-50 backbone; no published ResNeSt number.
# The base's backbone settings that DINO is tuned with stay: stages 2-4
# (out_indices (1, 2, 3), 512/1024/2048 channels, what the ChannelMapper's
# in_channels list), frozen stem + stage 1, and the backbone learning at 0.1x
# the AdamW rate (paramwise_cfg custom_keys 'backbone', which matches our
# backbone's parameter names).
_base_ = [
    'mmdet::dino/dino-4scale_r50_8xb2-12e_coco.py',
    './_base_/resnest_detection.py',
]

model = dict(
    data_preprocessor=_base_.resnest_data_preprocessor,
    backbone=dict(
        _base_.resnest50_backbone,
        # DINO's frozen BN (no affine grads, eval statistics), not the SyncBN
        # of mmdet's two-stage ResNeSt recipe: 2 images per GPU and a 0.1x
        # backbone rate, as DINO is published with.
        norm_cfg=dict(type='BN', requires_grad=False),
        norm_eval=True))
