# ResNeSt's official ImageNet recipe where MMPretrain's ResNeSt configs
# (mmpretrain::resnest/*_in1k.py) differ from it; the classification configs
# combine this with an mmpretrain:: base and pick from it. The official
# recipe is the Gluon training script behind the released ResNeSt-50/101 and
# "fast" weights (ResNeSt's scripts/gluon/train.py; resnest/gluon/resnest.py
# and ablation.py for the models).
#
# Already the official recipe in MMPretrain's configs, so kept as it is:
# - label smoothing 0.1 (LabelSmoothLoss, label_smooth_val=0.1);
# - mixup with alpha 0.2 on every batch and no CutMix: the official code
#   mixes with Beta(0.2, 0.2) and has no CutMix;
# - cosine schedule: 5 epochs of linear warm-up from ~0, then cosine to 0 at
#   epoch 270; lr 0.1 per 256 images (MMPretrain 0.8 for 32 x 64 images, the
#   official run 3.2 for 64 x 128);
# - no weight decay on biases and norms (official --no-wd), each block's last
#   BN starts at zero (--last-gamma; zero_init_residual here).
custom_imports = dict(imports=['resnest_mm'], allow_failed_imports=False)

# DropBlock: the official models build it in the last two stages (after bn1,
# the split attention's bn0 and bn3; 3x3 blocks, dropblock_prob=0.1);
# MMPretrain's ResNeSt has none.
official_drop_block = dict(prob=0.1, block_size=3)
# The official script raises the DropBlock rate linearly over training, to
# 0.1 * (epoch + 1) / 270 (its DropBlockScheduler, called every epoch).
official_drop_block_schedule = dict(
    type='DropBlockScheduleHook', end_prob=0.1)
# Nesterov momentum: the official optimizer is 'nag' (momentum 0.9, weight
# decay 1e-4); MMPretrain's is plain SGD with the same values.
official_optimizer = dict(nesterov=True)
