# DeepLabV3, ResNeSt-50-D8, ADE20K 512x512, 160k iterations, batch 16: the
# S-101 recipe with the 50-layer backbone (the paper: 45.1 mIoU; mmseg
# publishes no S-50 model).
_base_ = './deeplabv3_resnest101_d8_ade20k.py'

model = dict(backbone=_base_.resnest50_backbone)
