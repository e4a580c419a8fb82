# Panoptic FPN, ResNeSt-50 + FPN, 1x schedule on COCO panoptic: mmdet's R-50
# Panoptic FPN (reference: 40.2 PQ) with the backbone of mmdet's ResNeSt
# recipe; no published ResNeSt number.
_base_ = [
    'mmdet::panoptic_fpn/panoptic-fpn_r50_fpn_1x_coco.py',
    './_base_/resnest_detection.py',
]

model = dict(
    data_preprocessor=_base_.resnest_data_preprocessor,
    # SyncBN, not frozen BN statistics (norm_eval=False): as every published
    # ResNeSt detector. Heads (GN semantic head, Mask R-CNN's box and mask
    # heads), data and schedule stay the base's, so the R-50 number is the
    # comparison.
    backbone=_base_.resnest50_backbone)
