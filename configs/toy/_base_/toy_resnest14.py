# The half-width ResNeSt-14 of the toy detectors and the toy classifier, from
# scratch: 32-channel stem and first stage, BN trained (one process). Defined
# once, so a toy classifier's checkpoint fits a toy detector's backbone
# (configs/toy/faster_rcnn_resnest14_fpn_toy_from_cls.py). Each toolbox adds
# its own defaults for what is left out here: mmdet returns all four stages,
# MMPretrain the last one (out_indices=(3, )).
toy_backbone = dict(
    type='ResNeSt',
    depth=14,
    stem_channels=32,
    base_channels=32,
    frozen_stages=-1,
    norm_cfg=dict(type='BN', requires_grad=True),
    norm_eval=False,
    init_cfg=None)
