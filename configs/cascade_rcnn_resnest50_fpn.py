# Cascade R-CNN, ResNeSt-50 + FPN, SyncBN backbone and heads, multi-scale
# 640-800, 1x schedule on COCO (mmdet reference: 44.5 box AP).
_base_ = [
    'mmdet::cascade_rcnn/cascade-rcnn_r50_fpn_1x_coco.py',
    './_base_/resnest_detection.py',
]

# Each of the three stages keeps its box coder; only the head type changes.
model = dict(
    data_preprocessor=_base_.resnest_data_preprocessor,
    backbone=_base_.resnest50_backbone,
    roi_head=dict(bbox_head=[
        dict(stage, **_base_.shared4conv1fc_head)
        for stage in _base_.model.roi_head.bbox_head
    ]))

train_pipeline = [
    _base_.ms_range_resize if step['type'] == 'Resize' else step
    for step in _base_.train_pipeline
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
