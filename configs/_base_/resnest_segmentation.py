# What mmseg's published ResNeSt segmentation recipe (mmseg configs/resnest)
# changes in its ResNet-V1c D8 configs: only the backbone. ResNeSt with the
# deep stem, radix 2 and avg-down stride, from ImageNet ResNeSt weights
# (./resnest_seg_backbones.py). Output stride 8 (strides (1, 2, 1, 1),
# dilations (1, 1, 2, 4), contract_dilation), SyncBN, heads, data, schedule
# and TTA are the base's.
# On one process (no --launcher) mmengine's Runner turns SyncBN into BN.
_base_ = './resnest_seg_backbones.py'
custom_imports = dict(imports=['resnest_mm'], allow_failed_imports=False)
