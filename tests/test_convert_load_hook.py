"""Configs load every layout directly: ``init_cfg=dict(type='Pretrained')``.

The backbone's ``load_state_dict`` pre-hook (resnest_mm/weights/load_hook.py)
converts official, timm, mmpretrain and whole mmdet/mmseg checkpoints on the
way in and refuses another variant's weights. The weights each path loads
must equal the explicit conversion's (``test_convert_equivalence`` shows
those compute the source's features).
"""
import pytest
import timm
import torch
import torchvision
from mmdet.models.backbones.resnest import ResNeSt as MMDetResNeSt
from mmdet.registry import MODELS
from mmseg.models.backbones.resnest import ResNeSt as MMSegResNeSt
from resnest.torch import resnest50_fast_1s4x24d
from safetensors.torch import save_file
from torch import nn

from conftest import randomize_
from resnest_mm.models import ResNeSt
from resnest_mm.weights import (ArchMismatchError, convert_checkpoint,
                                read_weights)
from test_convert_equivalence import (  # noqa: F401 (autouse fixture)
    _fast_cpu, build_encoder_decoder, build_mmpretrain_classifier,
    build_retinanet)

S50 = dict(depth=50, stem_channels=64)


def _official(path):
    torch.save(randomize_(resnest50_fast_1s4x24d()).state_dict(), path)


def _timm(path):
    save_file(randomize_(timm.create_model('resnest14d')).state_dict(), path)


def _mmpretrain(path):
    classifier = build_mmpretrain_classifier(num_classes=10, **S50)
    torch.save({'meta': {}, 'state_dict': randomize_(classifier).state_dict()},
               path)


def _mmdet(path):
    detector = randomize_(build_retinanet(dict(type=MMDetResNeSt, **S50)))
    torch.save({'meta': {'epoch': 1}, 'state_dict': detector.state_dict()},
               path)


def _mmseg(path):
    segmentor = randomize_(build_encoder_decoder(dict(type=MMSegResNeSt,
                                                      **S50)))
    torch.save({'meta': {}, 'state_dict': segmentor.state_dict()}, path)


# (id, file name, writer, our arguments)
SOURCES = {
    'official': ('resnest50_fast_1s4x24d.pth', _official,
                 dict(arch='resnest50_fast_1s4x24d')),
    'timm': ('model.safetensors', _timm, dict(arch='resnest14d')),
    'mmpretrain': ('resnest50_in1k.pth', _mmpretrain, S50),
    'mmdet': ('retinanet_s50.pth', _mmdet, S50),
    'mmseg': ('fcn_s50.pth', _mmseg, S50),
}


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
    """Path of one source's checkpoint, written once per module."""
    made = {}

    def get(source: str) -> str:
        if source not in made:
            name, write, _ = SOURCES[source]
            made[source] = str(tmp_path_factory.mktemp(source) / name)
            write(made[source])
        return made[source]

    return get


def build(init_cfg=None, **kwargs) -> nn.Module:
    """Our backbone as a config builds it (mmdet's registry)."""
    model = MODELS.build(dict(type='ResNeSt', init_cfg=init_cfg, **kwargs))
    assert type(model) is ResNeSt
    return model


def assert_loaded(model: nn.Module, path: str) -> None:
    """Every tensor of ``model`` is the explicitly converted one."""
    expected = convert_checkpoint(read_weights(path)).state_dict
    loaded = {k: v for k, v in model.state_dict().items()
              if not k.endswith('num_batches_tracked')}
    assert set(loaded) <= set(expected)
    assert all(torch.equal(v, expected[k]) for k, v in loaded.items())


@pytest.mark.parametrize('source', sorted(SOURCES))
def test_init_cfg_pretrained_takes_every_layout(source, checkpoint):
    path = checkpoint(source)
    model = build(dict(type='Pretrained', checkpoint=path),
                  **SOURCES[source][2])
    model.init_weights()
    assert_loaded(model, path)


@pytest.mark.parametrize('source', ['mmpretrain', 'mmdet', 'mmseg'])
def test_init_cfg_with_backbone_prefix(source, checkpoint):
    path = checkpoint(source)
    model = build(dict(type='Pretrained', checkpoint=path,
                       prefix='backbone.'), **SOURCES[source][2])
    model.init_weights()
    assert_loaded(model, path)


def test_plain_load_state_dict_converts_too(checkpoint):
    official = read_weights(checkpoint('official'))
    model = ResNeSt(arch='resnest50_fast_1s4x24d')
    assert not model.load_state_dict(official, strict=True).unexpected_keys


def test_another_variant_is_refused(checkpoint):
    model = build(dict(type='Pretrained', checkpoint=checkpoint('official')),
                  depth=101)
    with pytest.raises(ArchMismatchError,
                       match='layer3 has 6 blocks in the checkpoint, 23 in '
                       'the model.*looks like resnest50d_1s4x24d / '
                       "resnest50_fast_1s4x24d .*arch='resnest50d_1s4x24d'"):
        model.init_weights()


def test_a_plain_resnet_is_refused(tmp_path):
    path = tmp_path / 'resnet50.pth'
    torch.save(torchvision.models.resnet50().state_dict(), path)
    model = build(dict(type='Pretrained', checkpoint=str(path)), **S50)
    with pytest.raises(ValueError, match='not a ResNeSt checkpoint'):
        model.init_weights()


def test_keys_without_a_place_are_reported(checkpoint):
    official = dict(read_weights(checkpoint('official')))
    official['layer1.0.se.fc.weight'] = torch.zeros(1)
    model = ResNeSt(arch='resnest50_fast_1s4x24d')
    with pytest.raises(RuntimeError,
                       match=r'Unexpected key\(s\) in state_dict: '
                       '"layer1.0.se.fc.weight"'):
        model.load_state_dict(official, strict=True)
    result = model.load_state_dict(official, strict=False)
    assert result.unexpected_keys == ['layer1.0.se.fc.weight']
    assert not result.missing_keys


def test_fewer_stages_leave_the_rest_out(checkpoint):
    model = build(dict(type='Pretrained', checkpoint=checkpoint('mmdet')),
                  num_stages=3, strides=(1, 2, 2), dilations=(1, 1, 1),
                  out_indices=(0, 1, 2), **S50)
    model.init_weights()
    assert_loaded(model, checkpoint('mmdet'))
    assert not hasattr(model, 'layer4')


class Wrapper(nn.Module):
    """A detector-like parent: the backbone under ``backbone.``."""

    def __init__(self, **kwargs):
        super().__init__()
        self.backbone = ResNeSt(**kwargs)
        self.neck = nn.Conv2d(2048, 8, 1)


def test_the_backbone_converts_inside_a_parent(checkpoint):
    official = read_weights(checkpoint('official'))
    parent = Wrapper(arch='resnest50_fast_1s4x24d')
    neck = parent.neck.state_dict()
    parent.load_state_dict(
        {**{f'backbone.{k}': v for k, v in official.items()},
         **{f'neck.{k}': v for k, v in neck.items()}}, strict=True)
    # and the parent's own checkpoint (resume) loads unchanged
    saved = parent.state_dict()
    Wrapper(arch='resnest50_fast_1s4x24d').load_state_dict(saved, strict=True)
