# Cascade Mask R-CNN, ResNeSt-50 + FPN, SyncBN backbone and heads, multi-scale
# 640-800 (six scales), 1x schedule on COCO (mmdet reference: 45.4 box AP,
# 39.5 mask AP).
_base_ = [
    'mmdet::cascade_rcnn/cascade-mask-rcnn_r50_fpn_1x_coco.py',
    './_base_/resnest_detection.py',
]

model = dict(
    data_preprocessor=_base_.resnest_data_preprocessor,
    backbone=_base_.resnest50_backbone,
    roi_head=dict(
        bbox_head=[
            dict(stage, **_base_.shared4conv1fc_head)
            for stage in _base_.model.roi_head.bbox_head
        ],
        mask_head=dict(norm_cfg=_base_.norm_cfg)))

train_pipeline = [
    _base_.ms_choice_resize if step['type'] == 'Resize' else
    dict(step, poly2mask=False) if step['type'] == 'LoadAnnotations' else step
    for step in _base_.train_pipeline
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
