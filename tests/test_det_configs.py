"""Every shipped detection config builds and runs; the COCO ones are mmdet's
published ResNeSt recipe with our backbone."""
import os.path as osp
from pathlib import Path

import mmdet
import pytest
import torch
from mmengine.config import Config
from mmengine.model import revert_sync_batchnorm
from mmengine.registry import init_default_scope
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample

from resnest_mm.models import ResNeSt

CONFIGS = Path(__file__).resolve().parents[1] / 'configs'
DET_CONFIGS = sorted(p for p in [*CONFIGS.glob('*rcnn*.py'),
                                 *CONFIGS.glob('toy/*rcnn*.py')])
MMDET_RESNEST = Path(osp.dirname(mmdet.__file__)) / '.mim/configs/resnest'
#: our config -> mmdet's config of the same published result
PUBLISHED = {
    'faster_rcnn_resnest50_fpn':
    'faster-rcnn_s50_fpn_syncbn-backbone+head_ms-range-1x_coco',
    'faster_rcnn_resnest101_fpn':
    'faster-rcnn_s101_fpn_syncbn-backbone+head_ms-range-1x_coco',
    'cascade_rcnn_resnest50_fpn':
    'cascade-rcnn_s50_fpn_syncbn-backbone+head_ms-range-1x_coco',
    'cascade_rcnn_resnest101_fpn':
    'cascade-rcnn_s101_fpn_syncbn-backbone+head_ms-range-1x_coco',
    'mask_rcnn_resnest50_fpn': 'mask-rcnn_s50_fpn_syncbn-backbone+head_ms-1x_coco',
    'mask_rcnn_resnest101_fpn':
    'mask-rcnn_s101_fpn_syncbn-backbone+head_ms-1x_coco',
    'cascade_mask_rcnn_resnest50_fpn':
    'cascade-mask-rcnn_s50_fpn_syncbn-backbone+head_ms-1x_coco',
    'cascade_mask_rcnn_resnest101_fpn':
    'cascade-mask-rcnn_s101_fpn_syncbn-backbone+head_ms-1x_coco',
}
RECIPE_KEYS = ('model', 'train_dataloader', 'val_dataloader',
               'test_dataloader', 'val_evaluator', 'optim_wrapper',
               'param_scheduler', 'train_cfg', 'default_hooks',
               'auto_scale_lr')


def _plain(value):
    """Config values as plain containers, without mmengine's ``_scope_``."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if k != '_scope_'}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def test_every_published_config_is_shipped():
    assert {p.stem for p in CONFIGS.glob('*rcnn*.py')} == set(PUBLISHED)


@pytest.mark.parametrize('name', sorted(PUBLISHED))
def test_recipe_equals_mmdets_published_config(name):
    ours = Config.fromfile(CONFIGS / f'{name}.py')
    theirs = Config.fromfile(MMDET_RESNEST / f'{PUBLISHED[name]}.py')
    for key in RECIPE_KEYS:
        assert _plain(ours[key]) == _plain(theirs[key]), key
    assert ours.custom_imports.imports == ['resnest_mm']


@pytest.mark.parametrize('path', DET_CONFIGS, ids=lambda p: p.stem)
def test_config_builds_our_backbone_and_runs(path):
    """Build with SyncBN reverted to BN (what a one-process Runner does) and
    without pretrained weights, then run the whole detector on a 64 px
    image: backbone, neck, RPN and every RoI head stage."""
    cfg = Config.fromfile(path)
    cfg.model.backbone.init_cfg = None
    cfg.model.test_cfg.rpn.update(nms_pre=64, max_per_img=8)  # fast heads
    init_default_scope('mmdet')
    model = revert_sync_batchnorm(MODELS.build(cfg.model)).eval()
    assert type(model.backbone) is ResNeSt
    assert list(model.backbone.out_channels) == list(cfg.model.neck.in_channels)
    sample = DetDataSample(metainfo=dict(
        img_shape=(64, 64), ori_shape=(64, 64), scale_factor=(1.0, 1.0)))
    data = model.data_preprocessor(dict(
        inputs=[torch.randint(0, 256, (3, 64, 64), dtype=torch.uint8)],
        data_samples=[sample]), False)
    with torch.no_grad():
        feats = model.extract_feat(data['inputs'])
        [result] = model(**data, mode='predict')
    assert [f.shape[-1] for f in feats] == [16, 8, 4, 2, 1]
    assert result.pred_instances.bboxes.shape[1] == 4
    if 'mask_head' in cfg.model.roi_head:
        assert 'masks' in result.pred_instances
