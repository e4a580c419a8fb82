# The toy Faster R-CNN with its backbone initialised from the toy classifier
# (./resnest14_cls_toy.py, trained first with tools/train.py): one init_cfg.
# prefix='backbone.' takes the classifier checkpoint's backbone and leaves
# its head out; both configs build ./_base_/toy_resnest14.py, so every
# backbone tensor has its place. Neck and heads start from their init.
_base_ = './faster_rcnn_resnest14_fpn_toy.py'

model = dict(
    backbone=dict(
        init_cfg=dict(
            _delete_=True,  # replaces the base's init_cfg=None (scratch)
            type='Pretrained',
            checkpoint='work_dirs/resnest14_cls_toy/epoch_8.pth',
            prefix='backbone.')))
