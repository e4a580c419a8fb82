# Mask2Former, ResNeSt-50, ADE20K 512x512, 160k iterations, batch 16 (8x2):
# mmseg's R-50 Mask2Former (reference: 47.87 mIoU) with a ResNeSt-50
# backbone; no published ResNeSt number. mmseg's Mask2Former head needs mmdet.
# The base's backbone settings stay: SyncBN with frozen affine parameters
# whose statistics keep updating (mmseg's norm_eval=False, also our default
# under mmseg's scope), and the backbone learning at 0.1x the AdamW rate.
_base_ = [
    'mmseg::mask2former/mask2former_r50_8xb2-160k_ade20k-512x512.py',
    './_base_/resnest_seg_backbones.py',
]
custom_imports = dict(
    imports=['mmdet.models', 'resnest_mm'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        # ResNeSt always has the deep stem: the base's deep_stem=False goes.
        {k: v for k, v in _base_.model.backbone.items() if k != 'deep_stem'},
        _delete_=True,
        **_base_.resnest50_backbone))
