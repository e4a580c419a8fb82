"""The classification configs: the ImageNet ones are MMPretrain's recipe
with exactly the official recipe's differences; every one builds an
ImageClassifier on our backbone that runs; the toy classifier's backbone is
the toy detectors'; the split-attention viewer and the cost table take them.
"""
import copy
from pathlib import Path

import mmpretrain
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmpretrain.structures import DataSample
from PIL import Image

import resnest_mm  # noqa: F401  (registers ResNeSt)
from conftest import load_tool
from resnest_mm.analysis.costs import variant_aliases
from resnest_mm.models import ResNeSt
from resnest_mm.weights.arch_check import summarize_arch
from toy_runs import REPO

CONFIGS = REPO / 'configs'
MMPRETRAIN_RESNEST = Path(mmpretrain.__file__).parent / '.mim/configs/resnest'
#: our ImageNet config -> MMPretrain's config it starts from
IMAGENET = {
    'resnest50_32xb64_in1k': 'resnest50_32xb64_in1k',
    'resnest101_32xb64_in1k': 'resnest101_32xb64_in1k',
    'resnest50_fast_1s4x24d_32xb64_in1k': 'resnest50_32xb64_in1k',
}
TOY_CLS = 'toy/resnest14_cls_toy'
TOY_DET = 'toy/faster_rcnn_resnest14_fpn_toy'
#: config -> (cost table row, classes)
CLASSIFIERS = {
    'resnest50_32xb64_in1k': ('resnest50d', 1000),
    'resnest101_32xb64_in1k': ('resnest101e', 1000),
    'resnest50_fast_1s4x24d_32xb64_in1k': ('resnest50d_1s4x24d', 1000),
    TOY_CLS: (None, 3),
}
RECIPE_KEYS = ('model', 'data_preprocessor', 'train_dataloader',
               'val_dataloader', 'test_dataloader', 'val_evaluator',
               'test_evaluator', 'optim_wrapper', 'param_scheduler',
               'train_cfg', 'val_cfg', 'test_cfg', 'default_hooks',
               'auto_scale_lr', 'randomness')
OFFICIAL_TEST_224 = [
    dict(type='LoadImageFromFile'),
    dict(type='EfficientNetCenterCrop', crop_size=224, backend='pillow'),
    dict(type='PackInputs'),
]


def load(name: str) -> Config:
    return Config.fromfile(CONFIGS / f'{name}.py')


def plain(value):
    """Config values as plain containers, without mmengine's ``_scope_``."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items() if k != '_scope_'}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def build(cfg: Config, **backbone):
    """The config's model (no pretrained weights), as the Runner builds it:
    the top-level data_preprocessor fills the model's."""
    from mmpretrain.registry import MODELS
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.backbone.update(init_cfg=None, **backbone)
    model_cfg.setdefault('data_preprocessor', cfg.get('data_preprocessor'))
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return MODELS.build(model_cfg)


@pytest.mark.parametrize('name', sorted(IMAGENET))
def test_recipe_is_mmpretrains_with_the_official_differences(name):
    ours = load(name)
    theirs = Config.fromfile(MMPRETRAIN_RESNEST / f'{IMAGENET[name]}.py')
    assert ours.default_scope == theirs.default_scope == 'mmpretrain'
    assert ours.custom_imports.imports == ['resnest_mm']
    # each difference, then nothing else
    backbone = ours.model.backbone
    assert backbone.pop('drop_block') == dict(prob=0.1, block_size=3)
    assert ours.pop('custom_hooks') == [
        dict(type='DropBlockScheduleHook', end_prob=0.1)]
    assert ours.optim_wrapper.optimizer.pop('nesterov') is True
    if 'fast' in name:
        assert backbone.pop('arch') == 'resnest50_fast_1s4x24d'
    if '50' in IMAGENET[name]:  # the official test crop
        for loader in ('val_dataloader', 'test_dataloader'):
            assert plain(ours[loader].dataset.pipeline) == OFFICIAL_TEST_224
            ours[loader].dataset.pipeline = theirs[loader].dataset.pipeline
    for key in RECIPE_KEYS:
        assert plain(ours.get(key)) == plain(theirs.get(key)), key


@pytest.mark.parametrize('name', sorted(CLASSIFIERS))
def test_config_builds_our_backbone_and_runs(name):
    cfg = load(name)
    model = build(cfg)
    assert type(model.backbone) is ResNeSt
    assert model.backbone.out_indices == (3, )  # MMPretrain's default
    assert model.head.fc.in_features == model.backbone.out_channels[-1]
    row, classes = CLASSIFIERS[name]
    torch.manual_seed(0)
    images = [torch.randint(0, 256, (3, 64, 64), dtype=torch.uint8)
              for _ in range(2)]
    samples = [DataSample().set_gt_label(i) for i in range(2)]
    data = model.data_preprocessor(
        dict(inputs=images, data_samples=samples), True)
    model.train()
    losses = model(**data, mode='loss')
    assert torch.isfinite(losses['loss'])
    losses['loss'].backward()
    assert model.backbone.stem[0].weight.grad.abs().sum() > 0
    model.eval()
    with torch.no_grad():
        scores = model(**model.data_preprocessor(
            dict(inputs=images, data_samples=samples), False),
            mode='predict')
    assert scores[0].pred_score.shape == (classes, )


@pytest.mark.parametrize('name', sorted(IMAGENET))
def test_imagenet_backbones_have_the_official_drop_block(name):
    backbone = build(load(name)).backbone
    for stage, has in (('layer1', False), ('layer2', False), ('layer3', True),
                       ('layer4', True)):
        block = getattr(backbone, stage)[0]
        assert (block.drop_block is not None) is has, stage
    assert backbone.layer4[0].drop_block.prob == 0.1
    assert backbone.layer4[0].drop_block.block_size == 3


def test_fast_variant_is_the_preset():
    backbone = build(load('resnest50_fast_1s4x24d_32xb64_in1k')).backbone
    assert (backbone.radix, backbone.groups, backbone.base_width,
            backbone.avd_first, backbone.stem_channels) == (1, 4, 24, True, 64)


@pytest.mark.parametrize('name', [n for n, (row, _) in CLASSIFIERS.items()
                                  if row])
def test_cost_table_has_a_row_for_each_imagenet_backbone(name):
    """The cost table takes presets (``--models NAME``); each config's
    backbone is one of them, shape for shape."""
    backbone = build(load(name)).backbone
    row = CLASSIFIERS[name][0]
    assert row in variant_aliases()
    names = summarize_arch(backbone.state_dict()).preset_names(
        backbone.avd_first)
    assert row in names or set(variant_aliases()[row]) & set(names)
    preset = ResNeSt(arch=row, out_indices=(3, ))
    assert {k: v.shape for k, v in preset.state_dict().items()} == {
        k: v.shape for k, v in backbone.state_dict().items()}


def test_toy_classifier_backbone_is_the_toy_detectors():
    from mmdet.registry import MODELS as DET_MODELS
    cls_cfg, det_cfg = load(TOY_CLS), load(TOY_DET)
    classifier = build(cls_cfg)
    with DefaultScope.overwrite_default_scope('mmdet'):
        detector = DET_MODELS.build(det_cfg.model)
    ours, theirs = classifier.backbone, detector.backbone
    assert {k: v.shape for k, v in ours.state_dict().items()} == {
        k: v.shape for k, v in theirs.state_dict().items()}
    assert ours.norm_eval is theirs.norm_eval is False
    # the same pixels reach both backbones
    for key in ('mean', 'std'):
        assert getattr(classifier.data_preprocessor, key).flatten().tolist() \
            == pytest.approx(getattr(detector.data_preprocessor, key)
                             .flatten().tolist())
    assert classifier.data_preprocessor.to_rgb
    assert detector.data_preprocessor._channel_conversion


@pytest.mark.parametrize('name', [TOY_CLS, 'resnest50_32xb64_in1k'])
def test_split_attention_viewer_takes_classification_configs(name, tmp_path):
    """The viewer builds the classifier with the config's top-level data
    preprocessor (MMPretrain keeps the normalisation there) and draws every
    view."""
    image = tmp_path / 'shape.png'
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(
        image)
    load_tool('analysis_tools/vis_split_attention.py').main(
        ['--config', str(CONFIGS / f'{name}.py'), str(image), '--out-dir',
         str(tmp_path / 'out')])
    out = tmp_path / 'out/shape'
    assert {p.name for p in out.iterdir()} == {
        'selectivity.png', 'selectivity.json', 'split_maps.png',
        'stage_outputs.png'}
    from resnest_mm.visualization.model_inputs import (build_config_model,
                                                       config_image_batch)
    model, cfg = build_config_model(str(CONFIGS / f'{name}.py'))
    batch, picture = config_image_batch(model, cfg, str(image))
    assert batch.shape[1] == 3 and picture.dtype == np.uint8
    # normalised with the config's mean and std, not the preprocessor's
    # default (none): values around 0, not 0..255
    assert batch.abs().max() < 5
    assert Path(image).exists()
