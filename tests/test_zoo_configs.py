"""The model-zoo configs beyond mmdet's/mmseg's published ResNeSt recipes
(RetinaNet, DINO, Panoptic FPN, UPerNet, Mask2Former): each builds through its
toolbox's registry with our ResNeSt, every neck/head conv that reads a
backbone level takes that level's channels (read from the built modules and
the features the backbone really returns), predict and one loss step run on
two 64 px images, and the base recipe's BN and backbone-LR settings reach our
backbone."""
import copy
import math
import re
from pathlib import Path
from typing import Dict, List, NamedTuple, Tuple

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.model import revert_sync_batchnorm
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope
from mmengine.structures import InstanceData, PixelData
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from resnest_mm.models import ResNeSt

CONFIGS = Path(__file__).resolve().parents[1] / 'configs'
SIZE = 64  # input side in pixels; the models are the configs' own
#: DINO picks its queries from the encoder's tokens, 85 at 64 px
#: (8^2 + 4^2 + 2^2 + 1): 50 instead of the config's 900 (also 18x less
#: matching and decoder work; the layers are the config's).
DINO_QUERIES = 50


class Expect(NamedTuple):
    """What a config should give our backbone: norms of stages 2-4 trainable
    (affine grads) and in train mode while the model trains, and the factor
    on the optimizer's learning rate for backbone parameters."""
    norm_trainable: bool
    norm_train_mode: bool
    backbone_lr_mult: float


#: config -> expected backbone settings (from each base recipe: ResNeSt's
#: detection SyncBN, DINO's frozen BN, mmseg's SyncBN, Mask2Former's frozen
#: affine with updating statistics; DINO and Mask2Former train the backbone
#: at 0.1x).
ZOO: Dict[str, Expect] = {
    'retinanet_resnest50_fpn': Expect(True, True, 1.0),
    'dino_4scale_resnest50': Expect(False, False, 0.1),
    'panoptic_fpn_resnest50_fpn': Expect(True, True, 1.0),
    'upernet_resnest50_ade20k': Expect(True, True, 1.0),
    'upernet_resnest101_ade20k': Expect(True, True, 1.0),
    'mask2former_resnest50_ade20k': Expect(False, True, 0.1),
    'mask2former_resnest101_ade20k': Expect(False, True, 0.1),
}
#: The configs that run predict and a loss step: an S-101 config is its S-50
#: one with depth 101 (its depth is checked by test_backbone_is_ours), and
#: its steps cost the most (Mask2Former S-101's loss step: over a minute).
STEPPED = [name for name in sorted(ZOO) if '101' not in name]
#: ResNeSt-50 and -101: blocks per stage (the ResNet-50/-101 layouts) and
#: deep-stem width (the paper's 64 and 128).
STAGE_BLOCKS = {50: [3, 4, 6, 3], 101: [3, 4, 23, 3]}
STEM_CHANNELS = {50: 64, 101: 128}


class Built(NamedTuple):
    name: str
    cfg: Config
    model: nn.Module


@pytest.fixture(scope='module', params=sorted(ZOO))
def built(request) -> Built:
    """The config's model without weights to download, SyncBN as BN (what a
    one-process Runner does), seg inputs padded to 64 px instead of the
    512 px crop. Module scope: pytest runs all tests of one config together,
    so one model is alive at a time."""
    cfg = Config.fromfile(CONFIGS / f'{request.param}.py')
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.backbone.init_cfg = None
    if cfg.default_scope == 'mmseg':
        model_cfg.data_preprocessor.size = (SIZE, SIZE)
    if model_cfg.type == 'DINO':
        model_cfg.num_queries = DINO_QUERIES
    # Seeded here: a module-scoped fixture runs before the per-test seed.
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        from mmengine.registry import MODELS
        model = revert_sync_batchnorm(MODELS.build(model_cfg))
        # as the Runner does before training: DINO's level_embed is an
        # uninitialised torch.Tensor until then (whatever memory held: NaN
        # boxes in some test orders)
        model.init_weights()
    return Built(request.param, cfg, model)


def _scoped(built: Built):
    return DefaultScope.overwrite_default_scope(built.cfg.default_scope)


def _level_readers(model: nn.Module) -> List[Tuple[str, int, int]]:
    """``(module, backbone output index, in_channels)`` for every conv of
    the neck or head that reads a backbone output directly."""
    readers = []
    neck = getattr(model, 'neck', None)
    if type(neck).__name__ == 'FPN':
        for j, conv in enumerate(neck.lateral_convs):
            readers.append((f'neck.lateral_convs.{j}', neck.start_level + j,
                            conv.conv.in_channels))
        if neck.add_extra_convs == 'on_input':
            first_extra = neck.backbone_end_level - neck.start_level
            readers.append((f'neck.fpn_convs.{first_extra}',
                            neck.backbone_end_level - 1,
                            neck.fpn_convs[first_extra].conv.in_channels))
    elif type(neck).__name__ == 'ChannelMapper':
        for i, conv in enumerate(neck.convs):
            readers.append((f'neck.convs.{i}', i, conv.conv.in_channels))
        readers.append(('neck.extra_convs.0', len(neck.convs) - 1,
                        neck.extra_convs[0].conv.in_channels))
    head = getattr(model, 'decode_head', None)
    if type(head).__name__ == 'UPerHead':
        levels = head.in_index
        for j, conv in enumerate(head.lateral_convs):
            readers.append((f'decode_head.lateral_convs.{j}', levels[j],
                            conv.conv.in_channels))
        for j, pool in enumerate(head.psp_modules):
            readers.append((f'decode_head.psp_modules.{j}', levels[-1],
                            pool[1].conv.in_channels))
        aux = model.auxiliary_head
        readers.append(('auxiliary_head.convs.0', aux.in_index,
                        aux.convs[0].conv.in_channels))
    elif type(head).__name__ == 'Mask2FormerHead':
        decoder = head.pixel_decoder
        top = decoder.num_input_levels - 1
        for k, conv in enumerate(decoder.input_convs):  # top level first
            readers.append((f'pixel_decoder.input_convs.{k}', top - k,
                            conv.conv.in_channels))
        below = top - decoder.num_encoder_levels
        for k, conv in enumerate(decoder.lateral_convs):
            readers.append((f'pixel_decoder.lateral_convs.{k}', below - k,
                            conv.conv.in_channels))
    return readers


def _images() -> List[torch.Tensor]:
    return [torch.randint(0, 256, (3, SIZE, SIZE), dtype=torch.uint8)
            for _ in range(2)]


def _det_samples(with_gt: bool, panoptic: bool) -> list:
    """Two DetDataSamples; with ``with_gt``, two boxes each (and their masks
    and a semantic map for Panoptic FPN)."""
    from mmdet.structures import DetDataSample
    from mmdet.structures.mask import BitmapMasks
    samples = []
    for _ in range(2):
        sample = DetDataSample(metainfo=dict(
            img_shape=(SIZE, SIZE), ori_shape=(SIZE, SIZE),
            scale_factor=(1.0, 1.0)))
        if with_gt:
            boxes = torch.tensor([[4., 6., 30., 40.], [20., 10., 60., 50.]])
            gt = InstanceData(bboxes=boxes, labels=torch.tensor([0, 3]))
            if panoptic:
                masks = np.zeros((2, SIZE, SIZE), dtype=np.uint8)
                for m, (x0, y0, x1, y1) in zip(masks, boxes.int().tolist()):
                    m[y0:y1, x0:x1] = 1
                gt.masks = BitmapMasks(masks, SIZE, SIZE)
                sample.gt_sem_seg = PixelData(sem_seg=torch.randint(
                    0, 133, (1, SIZE, SIZE)))
            sample.gt_instances = gt
        samples.append(sample)
    return samples


def _seg_samples() -> list:
    """Two SegDataSamples whose label maps hold three classes and an ignored
    corner (few classes: Mask2Former makes one target per class present)."""
    from mmseg.structures import SegDataSample
    labels = torch.full((1, SIZE, SIZE), 7)
    labels[:, :, SIZE // 2:] = 42
    labels[:, 8:24, 8:24] = 0
    labels[:, -8:, -8:] = 255
    samples = []
    for _ in range(2):
        sample = SegDataSample(metainfo=dict(
            img_shape=(SIZE, SIZE), ori_shape=(SIZE, SIZE)))
        sample.gt_sem_seg = PixelData(data=labels.clone())
        samples.append(sample)
    return samples


def _batch(built: Built, training: bool) -> dict:
    if built.cfg.default_scope == 'mmseg':
        samples = _seg_samples()
    else:
        samples = _det_samples(training, 'panoptic' in built.name)
    return built.model.data_preprocessor(
        dict(inputs=_images(), data_samples=samples), training)


def test_backbone_is_ours(built):
    assert type(built.model.backbone) is ResNeSt
    assert built.cfg.model.backbone.type == 'ResNeSt'
    assert 'resnest_mm' in built.cfg.custom_imports.imports
    # the depth the name states, in the built stages: an S-101 config that
    # kept its S-50 base's backbone would pass every other test here
    depth = int(re.search(r'resnest(\d+)', built.name).group(1))
    backbone = built.model.backbone
    assert backbone.depth == depth, (built.name, backbone.depth)
    assert [len(getattr(backbone, f'layer{i}')) for i in range(1, 5)] == (
        STAGE_BLOCKS[depth]), built.name
    assert backbone.layer1[0].conv1.in_channels == STEM_CHANNELS[depth]


def test_necks_and_heads_take_the_backbone_channels(built):
    with torch.no_grad():
        feats = built.model.eval().backbone(torch.randn(1, 3, SIZE, SIZE))
    channels = [f.shape[1] for f in feats]
    assert channels == list(built.model.backbone.out_channels)
    readers = _level_readers(built.model)
    assert readers, 'no neck/head conv found that reads the backbone'
    for module, level, in_channels in readers:
        assert in_channels == channels[level], (
            f'{module} takes {in_channels} channels, backbone output {level} '
            f'has {channels[level]}')


@pytest.mark.parametrize('built', STEPPED, indirect=True)
def test_predict(built):
    model = built.model.eval()
    with _scoped(built), torch.no_grad():
        results = model(**_batch(built, False), mode='predict')
    assert len(results) == 2
    result = results[0]
    if built.cfg.default_scope == 'mmseg':
        labels = result.pred_sem_seg.data
        assert labels.shape == (1, SIZE, SIZE)
        assert 0 <= labels.min() and labels.max() < 150
    elif 'panoptic' in built.name:
        assert result.pred_panoptic_seg.sem_seg.shape == (
            1, SIZE, SIZE)
    else:
        boxes = result.pred_instances.bboxes
        assert boxes.ndim == 2 and boxes.shape[1] == 4
        assert torch.isfinite(boxes).all()


@pytest.mark.parametrize('built', STEPPED, indirect=True)
def test_loss_step_reaches_the_backbone(built):
    """One forward/backward in train mode: finite losses, gradients in the
    backbone's trainable stages (not in the frozen stem of the det
    configs)."""
    model = built.model.train()
    model.zero_grad()
    with _scoped(built):
        losses = model(**_batch(built, True), mode='loss')
    total, _ = model.parse_losses(losses)
    assert torch.isfinite(total), {k: v for k, v in losses.items()}
    total.backward()
    backbone = model.backbone
    grads = [p.grad for p in backbone.layer4.parameters() if p.requires_grad]
    assert grads and all(g is not None for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)
    if backbone.frozen_stages >= 0:
        assert all(p.grad is None for p in backbone.stem.parameters())


def test_backbone_norms_follow_the_base_recipe(built):
    expect = ZOO[built.name]
    backbone = built.model.train().backbone
    norms = [m for stage in (backbone.layer2, backbone.layer3,
                             backbone.layer4)
             for m in stage.modules() if isinstance(m, _BatchNorm)]
    assert norms
    trainable = {m.weight.requires_grad for m in norms}
    assert trainable == {expect.norm_trainable}, (
        f'norm affine requires_grad {trainable}, expected '
        f'{expect.norm_trainable}')
    train_mode = {m.training for m in norms}
    assert train_mode == {expect.norm_train_mode}, (
        f'norms in train mode: {train_mode}, expected '
        f'{expect.norm_train_mode} (norm_eval={backbone.norm_eval})')


def test_backbone_learning_rate_multiplier(built):
    expect = ZOO[built.name]
    with _scoped(built):
        optim = build_optim_wrapper(built.model, built.cfg.optim_wrapper)
    base_lr = built.cfg.optim_wrapper.optimizer.lr
    backbone = {id(p) for p in built.model.backbone.parameters()}
    lrs = {'backbone': set(), 'rest': set()}
    for group in optim.optimizer.param_groups:
        for p in group['params']:
            lrs['backbone' if id(p) in backbone else 'rest'].add(group['lr'])
    assert lrs['backbone'] and all(
        math.isclose(lr, base_lr * expect.backbone_lr_mult)
        for lr in lrs['backbone']), (base_lr, lrs['backbone'])
    assert any(math.isclose(lr, base_lr) for lr in lrs['rest'])
