"""A classifier checkpoint initialises a detector's or segmentor's backbone
through one init_cfg (``type='Pretrained', prefix='backbone.'``): every
backbone tensor comes from the checkpoint, none stays at its init; a
classifier of another depth or radix is refused with ArchMismatchError."""
import copy

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from torch.nn.modules.batchnorm import _BatchNorm

import resnest_mm  # noqa: F401  (registers ResNeSt)
from conftest import randomize_
from resnest_mm.weights.arch_check import ArchMismatchError
from toy_runs import REPO

TOY_CLS = REPO / 'configs/toy/resnest14_cls_toy.py'
FROM_CLS = REPO / 'configs/toy/faster_rcnn_resnest14_fpn_toy_from_cls.py'
SCRATCH = REPO / 'configs/toy/faster_rcnn_resnest14_fpn_toy.py'


def build(toolbox: str, model_cfg):
    registry = __import__(f'{toolbox}.registry', fromlist=['MODELS']).MODELS
    with DefaultScope.overwrite_default_scope(toolbox):
        return registry.build(copy.deepcopy(model_cfg))


def classifier_checkpoint(path, seed: int = 3, **backbone):
    """A toy classifier with seeded random weights (every conv, norm and
    running statistic; 7 batches tracked), saved as tools/train.py saves
    it; returns its state dict."""
    cfg = Config.fromfile(TOY_CLS)
    cfg.model.backbone.update(backbone)
    model = randomize_(build('mmpretrain', cfg.model), seed=seed)
    for m in model.modules():
        if isinstance(m, _BatchNorm):
            m.num_batches_tracked.fill_(7)
    state = model.state_dict()
    torch.save(dict(meta=dict(epoch=8), state_dict=state), path)
    return state


def initialised_detector(checkpoint, config=FROM_CLS, **backbone):
    cfg = Config.fromfile(config)
    cfg.model.backbone.init_cfg.checkpoint = str(checkpoint)
    cfg.model.backbone.update(backbone)
    detector = build('mmdet', cfg.model)
    detector.init_weights()
    return detector


def test_config_names_one_pretrained_init_with_the_backbone_prefix():
    init = Config.fromfile(FROM_CLS).model.backbone.init_cfg
    assert dict(init) == dict(
        type='Pretrained', prefix='backbone.',
        checkpoint='work_dirs/resnest14_cls_toy/epoch_8.pth')


def test_every_backbone_tensor_loads_none_stays_at_init(tmp_path):
    state = classifier_checkpoint(tmp_path / 'cls.pth')
    loaded = initialised_detector(tmp_path / 'cls.pth').backbone.state_dict()
    torch.manual_seed(0)
    scratch = build('mmdet', Config.fromfile(SCRATCH).model)
    scratch.init_weights()
    at_init = scratch.backbone.state_dict()
    expected = {k[len('backbone.'):]: v for k, v in state.items()
                if k.startswith('backbone.')}
    assert set(loaded) == set(expected) == set(at_init)
    assert len(loaded) > 100
    for key, value in loaded.items():
        assert torch.equal(value, expected[key]), key
        assert not torch.equal(value, at_init[key]), f'{key} is at its init'
    # the classifier's head is not part of it
    assert any(k.startswith('head.') for k in state)


def test_segmentor_backbone_takes_a_classifier_checkpoint(tmp_path):
    """Same init_cfg line in a segmentation config (mmseg's registry and
    its EncoderDecoder), on a backbone of the classifier's arguments."""
    state = classifier_checkpoint(tmp_path / 'cls.pth')
    cfg = Config.fromfile(REPO / 'configs/toy/upernet_resnest14_toy.py')
    toy = Config.fromfile(TOY_CLS).model.backbone
    cfg.model.backbone.update(
        stem_channels=toy.stem_channels, base_channels=toy.base_channels,
        init_cfg=dict(type='Pretrained', checkpoint=str(tmp_path / 'cls.pth'),
                      prefix='backbone.'))
    cfg.model.decode_head.in_channels = [128, 256, 512, 1024]
    cfg.model.auxiliary_head = None
    segmentor = build('mmseg', cfg.model)
    segmentor.init_weights()
    for key, value in segmentor.backbone.state_dict().items():
        assert torch.equal(value, state[f'backbone.{key}']), key


@pytest.mark.parametrize('backbone,named', [
    (dict(depth=26), r'layer1 has 1 blocks in the checkpoint, 2 in the '
     r'model'),
    (dict(radix=4), r'layer1\.0\.conv2\.conv\.weight: checkpoint '
     r'\(64, 16, 3, 3\), model \(128, 8, 3, 3\)'),
])
def test_classifier_of_another_depth_or_radix_is_refused(tmp_path, backbone,
                                                         named):
    classifier_checkpoint(tmp_path / 'cls.pth')
    with pytest.raises(ArchMismatchError, match=named) as err:
        initialised_detector(tmp_path / 'cls.pth', **backbone)
    assert str(err.value).startswith('checkpoint does not fit this ResNeSt')
    assert 'the model is depth=' in str(err.value)


def test_mmpretrain_own_classifier_of_another_radix_is_refused(tmp_path):
    """MMPretrain's own ResNeSt-50 classifier (its layout) into a radix-4
    backbone: the same error as any mismatched checkpoint."""
    from mmpretrain.models.backbones.resnest import ResNeSt as Theirs
    cfg = Config.fromfile(TOY_CLS).model
    cfg.backbone = dict(type=Theirs, depth=50)
    cfg.head.in_channels = 2048
    theirs = build('mmpretrain', cfg)
    torch.save(dict(state_dict=theirs.state_dict()), tmp_path / 'theirs.pth')
    from resnest_mm.models import ResNeSt
    from mmengine.runner import load_checkpoint
    ours = ResNeSt(depth=50, stem_channels=64, radix=4)
    with pytest.raises(ArchMismatchError, match=r'looks like .*radix=2.*'
                       r'the model is .*radix=4'):
        load_checkpoint(ours, str(tmp_path / 'theirs.pth'),
                        revise_keys=[(r'^backbone\.', '')])
    # and with the right radix it loads
    load_checkpoint(ResNeSt(depth=50, stem_channels=64),
                    str(tmp_path / 'theirs.pth'),
                    revise_keys=[(r'^backbone\.', '')], strict=True)
