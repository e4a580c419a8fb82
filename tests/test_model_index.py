"""model-index.yml (what `mim search resnest_mm` reads) lists every shipped
config, each listed config's backbone builds as our ResNeSt, its metadata
matches the config (for classifiers also their data and classes), and
results and weights appear only where mmdet or mmseg publish the same
recipe, with their numbers."""
import os.path as osp
import re
from pathlib import Path
from typing import Dict, List

import mmdet
import mmseg
import pytest
import yaml
from mmengine.config import Config
from mmengine.registry import DefaultScope
from modelindex import load

from resnest_mm.models import ResNeSt
from test_det_configs import PUBLISHED as DET_RECIPES
from test_seg_configs import RECIPES as SEG_RECIPES

REPO = Path(__file__).resolve().parents[1]
INDEX = load(str(REPO / 'model-index.yml'))
MODELS = {m.name: m for m in INDEX.models}
#: Our config -> the name of mmdet's/mmseg's config it is checked equal to
#: (tests/test_det_configs.py, tests/test_seg_configs.py).
RECIPES = {**DET_RECIPES, **{k: v for k, (v, _) in SEG_RECIPES.items()}}
#: A classification config's dataset type -> the ``Training Data`` its entry
#: states and the classes its head must predict.
CLS_DATASETS = {'ImageNet': ('ImageNet-1k', 1000),
                'CustomDataset': ('Toy shapes', 3)}


def _upstream_models() -> Dict[str, dict]:
    """mmdet's and mmseg's published ResNeSt models by weights URL."""
    files = [osp.join(osp.dirname(mmdet.__file__), '.mim/configs/resnest',
                      'metafile.yml'),
             osp.join(osp.dirname(mmseg.__file__), '.mim/configs/resnest',
                      'metafile.yaml')]
    models = {}
    for path in files:
        with open(path) as f:
            for model in yaml.safe_load(f)['Models']:
                models[model['Weights']] = model
    return models


def _results(results) -> List[tuple]:
    """Results as (task, dataset, metrics) tuples; mmseg writes one result
    as a dict, mmdet and model-index a list."""
    if isinstance(results, dict):
        results = [results]
    return [(r['Task'], r['Dataset'], r['Metrics']) if isinstance(r, dict)
            else (r.task, r.dataset, r.metrics) for r in results or []]


def _processes(resources: str) -> int:
    """Training processes in a metafile's ``Training Resources``: ``'8x
    GPUs'`` -> 8, ``'CPU'`` (the toy configs' one process) -> 1."""
    if resources == 'CPU':
        return 1
    match = re.fullmatch(r'(\d+)x GPUs', resources)
    assert match, (f'Training Resources {resources!r}: expected '
                   "'Nx GPUs' or 'CPU'")
    return int(match.group(1))


def test_every_config_is_listed_once():
    """Every config under configs/ except the _base_ folders (which are not
    runnable models) is listed, the toy ones included; no name twice."""
    shipped = {p.relative_to(REPO).as_posix()
               for p in (REPO / 'configs').rglob('*.py')
               if '_base_' not in p.parts}
    listed = [m.config for m in INDEX.models]
    assert len(listed) == len(set(listed)) == len(MODELS)
    assert set(listed) == shipped, (
        f'not listed: {sorted(shipped - set(listed))}, '
        f'listed but not shipped: {sorted(set(listed) - shipped)}')


@pytest.mark.parametrize('name', sorted(MODELS))
def test_listed_config_builds_with_our_backbone(name):
    model = MODELS[name]
    assert Path(model.config).stem == name
    cfg = Config.fromfile(str(REPO / model.config))
    backbone_cfg = cfg.model.backbone
    backbone_cfg.init_cfg = None
    # the backbone alone: whole models are built in test_zoo_configs.py,
    # test_det_configs.py and test_seg_configs.py
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        from mmengine.registry import MODELS as REGISTRY
        backbone = REGISTRY.build(backbone_cfg)
    assert type(backbone) is ResNeSt
    meta = model.metadata.data
    assert meta['Architecture'][0] == f'ResNeSt-{backbone.depth}'
    if 'Epochs' in meta:
        assert meta['Epochs'] == cfg.train_cfg.max_epochs
    else:
        assert meta['Iterations'] == cfg.train_cfg.max_iters
    # the total batch: per-process batch x the processes the entry states
    processes = _processes(meta['Training Resources'])
    per_process = cfg.train_dataloader.batch_size
    assert meta['Batch Size'] == per_process * processes, (
        f"Batch Size {meta['Batch Size']} != {processes} processes x "
        f'{per_process} per process')


@pytest.mark.parametrize('name', sorted(MODELS))
def test_classifier_entries_state_their_model_and_data(name):
    """MMPretrain configs (and only they) are listed as ImageClassifier,
    with the data their dataloader reads and a head of its classes."""
    model = MODELS[name]
    cfg = Config.fromfile(str(REPO / model.config))
    meta = model.metadata.data
    if cfg.default_scope != 'mmpretrain':
        assert meta['Architecture'][1] != 'ImageClassifier', name
        return
    assert meta['Architecture'][1] == cfg.model.type == 'ImageClassifier'
    data, classes = CLS_DATASETS[cfg.train_dataloader.dataset.type]
    assert meta['Training Data'] == data
    assert cfg.model.head.num_classes == classes


def test_every_classification_config_is_listed():
    classifiers = {m.name for m in INDEX.models
                   if m.metadata.data['Architecture'][1] == 'ImageClassifier'}
    assert classifiers == {'resnest50_32xb64_in1k', 'resnest101_32xb64_in1k',
                           'resnest50_fast_1s4x24d_32xb64_in1k',
                           'resnest14_cls_toy'}


@pytest.mark.parametrize('name', sorted(MODELS))
def test_results_and_weights_only_from_the_same_published_recipe(name):
    model = MODELS[name]
    if name not in RECIPES:
        assert not model.results and not model.weights, (
            f'{name}: no published recipe, so no results or weights')
        return
    upstream = _upstream_models().get(model.weights)
    assert upstream is not None, f'{name}: {model.weights} is not published'
    assert Path(upstream['Config']).stem == RECIPES[name]
    assert _results(model.results) == _results(upstream['Results'])
