# ResNeSt-101 on ImageNet-1k with the official training recipe: MMPretrain's
# ResNeSt-101 config (128-channel stem; 256 px train and test crops, the
# official crop for ResNeSt-101 too: 82.83% top-1 in its README) plus what
# the official recipe does differently (../_base_/resnest_classification.py,
# each difference commented there): DropBlock, its linear schedule, Nesterov
# momentum.
_base_ = [
    'mmpretrain::resnest/resnest101_32xb64_in1k.py',
    './_base_/resnest_classification.py',
]

model = dict(backbone=dict(drop_block=_base_.official_drop_block))
custom_hooks = [_base_.official_drop_block_schedule]
optim_wrapper = dict(optimizer=_base_.official_optimizer)
