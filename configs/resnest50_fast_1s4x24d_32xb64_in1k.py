# ResNeSt-50-fast 1s4x24d on ImageNet-1k: the ResNeSt-50 recipe of
# ./resnest50_32xb64_in1k.py (the official one) with the "fast" block: radix
# 1, 4 groups of width 24, and the stride's average pool before the split
# attention conv (avd_first), from our presets. The official model of this
# name is trained with the same recipe (DropBlock 0.1 included); it reaches
# 80.99% top-1 at 224 px (ResNeSt's ablation.md).
_base_ = './resnest50_32xb64_in1k.py'

model = dict(backbone=dict(arch='resnest50_fast_1s4x24d'))
