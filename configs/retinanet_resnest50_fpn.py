# RetinaNet, ResNeSt-50 + FPN, 1x schedule on COCO: mmdet's R-50 RetinaNet
# (reference: 36.5 box AP) with the backbone of mmdet's ResNeSt recipe. mmdet
# publishes no ResNeSt RetinaNet, so there is no ResNeSt number to reproduce.
_base_ = [
    'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py',
    './_base_/resnest_detection.py',
]

model = dict(
    data_preprocessor=_base_.resnest_data_preprocessor,
    # SyncBN, not frozen BN statistics (norm_eval=False): as every published
    # ResNeSt detector. The head has no norm; data and schedule stay the
    # base's single-scale 1x, so the R-50 number is the comparison.
    backbone=_base_.resnest50_backbone)
