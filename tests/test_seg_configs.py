"""Every shipped segmentation config builds its model and runs it; the ADE20K
and Cityscapes configs are mmseg's ResNeSt recipe; the dilated backbone's
output stride is what the config says."""
import copy
import functools
import os.path as osp
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.model import revert_sync_batchnorm
from mmengine.registry import DefaultScope

import resnest_mm  # noqa: F401  (registers ResNeSt)
from resnest_mm.engine.run_config import apply_test_flags
from resnest_mm.toy_data import TOY_ADE20K_CLASSES

CONFIGS = Path(__file__).resolve().parents[1] / 'configs'
MMSEG_CONFIGS = Path(__import__('mmseg').__file__).parent / '.mim' / 'configs'

#: Shipped config -> (mmseg's ResNeSt-101 config it reproduces, classes).
RECIPES = {
    'deeplabv3_resnest101_d8_ade20k':
    ('resnest_s101-d8_deeplabv3_4xb4-160k_ade20k-512x512', 150),
    'deeplabv3plus_resnest101_d8_ade20k':
    ('resnest_s101-d8_deeplabv3plus_4xb4-160k_ade20k-512x512', 150),
    'pspnet_resnest101_d8_ade20k':
    ('resnest_s101-d8_pspnet_4xb4-160k_ade20k-512x512', 150),
    'fcn_resnest101_d8_ade20k':
    ('resnest_s101-d8_fcn_4xb4-160k_ade20k-512x512', 150),
    'deeplabv3_resnest101_d8_cityscapes':
    ('resnest_s101-d8_deeplabv3_4xb2-80k_cityscapes-512x1024', 19),
    'deeplabv3plus_resnest101_d8_cityscapes':
    ('resnest_s101-d8_deeplabv3plus_4xb2-80k_cityscapes-512x1024', 19),
    'pspnet_resnest101_d8_cityscapes':
    ('resnest_s101-d8_pspnet_4xb2-80k_cityscapes512x1024', 19),
    'fcn_resnest101_d8_cityscapes':
    ('resnest_s101-d8_fcn_4xb2-80k_cityscapes-512x1024', 19),
}
S50 = 'deeplabv3_resnest50_d8_ade20k'
TOY = 'toy/deeplabv3_resnest14_d8_toy'
#: Every segmentation config we ship -> its number of classes.
SEG_CONFIGS = {**{name: n for name, (_, n) in RECIPES.items()}, S50: 150,
               TOY: len(TOY_ADE20K_CLASSES)}


@functools.lru_cache(maxsize=None)
def _read(name: str) -> Config:
    return Config.fromfile(str(CONFIGS / f'{name}.py'))


def _load(name: str) -> Config:
    """A fresh copy of config ``name`` (reading one takes seconds)."""
    return copy.deepcopy(_read(name))


def _offline_model_cfg(cfg: Config) -> dict:
    """The config's model without weights to download."""
    model = copy.deepcopy(cfg.model)
    model.pretrained = None
    model.backbone.init_cfg = None
    return model


def _build(model_cfg: dict) -> torch.nn.Module:
    from mmseg.registry import MODELS
    with DefaultScope.overwrite_default_scope('mmseg'):
        return revert_sync_batchnorm(MODELS.build(model_cfg)).eval()


def test_every_segmentation_config_is_listed():
    shipped = {p.stem for pattern in ('deeplabv3_resnest*', 'pspnet_resnest*',
                                      'deeplabv3plus_resnest*',
                                      'fcn_resnest*')
               for p in CONFIGS.glob(f'{pattern}.py')}
    assert shipped == set(SEG_CONFIGS) - {TOY}


@pytest.mark.parametrize('name', sorted(SEG_CONFIGS))
def test_config_builds_and_predicts(name):
    cfg = _load(name)
    assert cfg.default_scope == 'mmseg'
    model = _build(_offline_model_cfg(cfg))
    assert type(model.backbone).__module__ == 'resnest_mm.models.resnest'
    num_classes = SEG_CONFIGS[name]
    assert model.decode_head.num_classes == num_classes
    from mmseg.structures import SegDataSample
    meta = dict(img_shape=(64, 64), ori_shape=(64, 64), pad_shape=(64, 64),
                padding_size=[0, 0, 0, 0])
    with torch.no_grad():
        logits = model(torch.randn(1, 3, 64, 64), mode='tensor')
        pred = model.predict(torch.randn(1, 3, 64, 64),
                             [SegDataSample(metainfo=meta)])[0]
    assert logits.shape[:2] == (1, num_classes)
    assert torch.isfinite(logits).all()
    labels = pred.pred_sem_seg.data
    assert labels.shape == (1, 64, 64)
    assert 0 <= labels.min() and labels.max() < num_classes


def _plain(value):
    """``value`` as plain dicts and lists, without the ``_scope_`` keys that
    loading through ``mmseg::`` adds."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if k != '_scope_'}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _strip_weights(model: dict) -> dict:
    """The model dict without its checkpoint settings (pretrained/init_cfg):
    mmseg names the weights in ``pretrained``, we in the backbone's
    ``init_cfg``."""
    model = _plain(model)
    model.pop('pretrained', None)
    model['backbone'].pop('init_cfg', None)
    return model


@pytest.mark.parametrize('name', sorted(RECIPES))
def test_s101_config_is_mmsegs_resnest_recipe(name):
    ours = _load(name)
    theirs = Config.fromfile(
        str(MMSEG_CONFIGS / 'resnest' / f'{RECIPES[name][0]}.py'))
    assert _strip_weights(ours.model) == _strip_weights(theirs.model)
    assert ours.model.pretrained is None
    assert ours.model.backbone.init_cfg == dict(
        type='Pretrained', checkpoint=theirs.model.pretrained)
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader',
                'train_cfg', 'optim_wrapper', 'param_scheduler',
                'val_evaluator', 'tta_model', 'tta_pipeline'):
        assert _plain(ours[key]) == _plain(theirs[key]), key


def test_s50_config_is_the_s101_recipe_with_resnest50():
    s50, s101 = _load(S50), _load('deeplabv3_resnest101_d8_ade20k')
    backbone = s50.model.backbone
    assert (backbone.depth, backbone.stem_channels) == (50, 64)
    assert backbone.init_cfg.checkpoint == 'open-mmlab://resnest50'
    s50.model.backbone = s101.model.backbone
    assert s50.model == s101.model
    assert s50.train_dataloader == s101.train_dataloader


@pytest.mark.parametrize('name,crop,iters,batch', [
    ('deeplabv3_resnest101_d8_ade20k', (512, 512), 160000, 4),
    ('deeplabv3_resnest101_d8_cityscapes', (512, 1024), 80000, 2),
])
def test_recipe_schedule_crop_and_batch(name, crop, iters, batch):
    cfg = _load(name)
    assert cfg.crop_size == crop
    assert cfg.model.data_preprocessor.size == crop
    assert cfg.train_cfg.max_iters == iters
    assert cfg.train_dataloader.batch_size == batch  # per GPU, 4 GPUs
    assert cfg.model.backbone.norm_cfg.type == 'SyncBN'


@pytest.mark.parametrize('name', sorted(SEG_CONFIGS))
def test_tta_is_mmsegs_flip_and_multi_scale(name, tmp_path):
    cfg = _load(name)
    checkpoint = tmp_path / 'model.pth'
    checkpoint.write_bytes(b'')
    apply_test_flags(cfg, str(checkpoint), tta=True)
    assert cfg.model.type == 'SegTTAModel'
    assert cfg.model.module.backbone.type == 'ResNeSt'
    aug = cfg.test_dataloader.dataset.pipeline[1]
    assert aug.type == 'TestTimeAug'
    scales = [step.scale_factor for step in aug.transforms[0]]
    flips = [step.prob for step in aug.transforms[1]]
    assert len(scales) >= 3 and 1.0 in scales
    assert flips == [0.0, 1.0]


def test_toy_config_reads_the_toy_classes():
    cfg = _load(TOY)
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        dataset = cfg[loader].dataset
        assert dataset.type == 'ADE20KDataset'
        assert tuple(dataset.metainfo.classes) == TOY_ADE20K_CLASSES
    assert cfg.model.backbone.norm_cfg.type == 'BN'


# Output stride: the dilated backbone keeps H/8 (D8) or H/16 (D16).
D16 = dict(strides=(1, 2, 2, 1), dilations=(1, 1, 1, 2))


@pytest.mark.parametrize('name,variant,stride', [
    (TOY, {}, 8),
    (TOY, D16, 16),
    (S50, {}, 8),
    (S50, D16, 16),
    ('deeplabv3_resnest101_d8_ade20k', {}, 8),
])
def test_output_stride_on_feature_shapes(name, variant, stride):
    backbone_cfg = dict(_offline_model_cfg(_load(name)).backbone, **variant)
    backbone = _build(backbone_cfg)
    with torch.no_grad():
        feats = backbone(torch.randn(1, 3, 64, 96))
    assert [f.shape[-2:] for f in feats] == [
        (64 // s, 96 // s) for s in (4, 8, stride, stride)]
    assert backbone.out_strides == (4, 8, stride, stride)
    assert [f.shape[1] for f in feats] == list(backbone.out_channels)


def test_shipped_configs_are_d8():
    for name in SEG_CONFIGS:
        backbone = _load(name).model.backbone
        assert (backbone.strides, backbone.dilations) == ((1, 2, 1, 1),
                                                          (1, 1, 2, 4)), name
        assert backbone.contract_dilation, name
        assert osp.basename(name).split('_')[2] == 'd8'
