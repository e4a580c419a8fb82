"""Small deterministic datasets on disk, in the layouts mmdet, mmseg and
MMPretrain read.

They let anyone (and the tests) run train -> checkpoint -> evaluate on a CPU in
minutes, through the unchanged ``CocoDataset`` / ``ADE20KDataset`` /
``CustomDataset``.
"""
from resnest_mm.toy_data.ade20k import (TOY_ADE20K_CLASSES,
                                        TOY_ADE20K_LABELS, make_toy_ade20k)
from resnest_mm.toy_data.classification import (TOY_CLS_CLASSES,
                                                make_toy_classification)
from resnest_mm.toy_data.coco import TOY_COCO_CLASSES, make_toy_coco

__all__ = [
    'TOY_ADE20K_CLASSES', 'TOY_ADE20K_LABELS', 'TOY_CLS_CLASSES',
    'TOY_COCO_CLASSES', 'make_toy_ade20k', 'make_toy_classification',
    'make_toy_coco'
]
