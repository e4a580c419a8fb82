"""Converted weights compute what the source computes, for every variant.

Slow end-to-end tests. Each builds the source network with its own code (the
official ``resnest`` package, timm, mmpretrain, mmdet, mmseg), gives it
random weights, saves its checkpoint as that source does, converts the file
through ``resnest_mm.weights``, loads it into our backbone with
``strict=True`` and compares all four stage outputs (eval mode, random
input) within 1e-5.

To stay fast on 2 busy CPU cores: torch runs one thread (two threads on
cores other jobs share run these small convolutions 5-10x slower), the
oneDNN convolution path is off (it spends seconds preparing the ~400
convolution shapes of a 269-layer network before its first run, which a
one-forward test never amortises), networks are built on the meta device
where their code allows (their own random init costs as much as
``randomize_``, which overwrites it) and deep variants see 32x32 inputs.
"""
from typing import Callable, List

import pytest
import resnest.torch as official
import timm
import torch
from mmdet.models.backbones.resnest import ResNeSt as MMDetResNeSt
from mmdet.registry import MODELS as MMDET_MODELS
from mmengine.registry import DefaultScope
from mmpretrain.registry import MODELS as MMPRETRAIN_MODELS
from mmseg.models.backbones.resnest import ResNeSt as MMSegResNeSt
from mmseg.registry import MODELS as MMSEG_MODELS
from safetensors.torch import save_file
from torch import Tensor, nn

from conftest import max_abs_diff, randomize_
from resnest_mm.models import ResNeSt
from resnest_mm.weights import convert_checkpoint, read_weights

TOL = 1e-5
#: Variants deep enough that a 32x32 input keeps the test fast.
DEEP = ('200', '269')


@pytest.fixture(autouse=True)
def _fast_cpu():
    """One torch thread, no oneDNN (see the module docstring)."""
    threads, onednn = torch.get_num_threads(), torch.backends.mkldnn.enabled
    torch.set_num_threads(1)
    torch.backends.mkldnn.enabled = False
    yield
    torch.set_num_threads(threads)
    torch.backends.mkldnn.enabled = onednn


def input_size(name: str) -> int:
    return 32 if any(d in name for d in DEEP) else 64


def random_source(build: Callable[[], nn.Module],
                  on_meta: bool = True) -> nn.Module:
    """``build()`` with ``randomize_``'s weights, in eval mode.

    ``on_meta``: tensors ``randomize_`` does not set (classifier ``Linear``
    layers) then hold arbitrary values; the converter drops them and the
    features never use them.
    """
    if not on_meta:
        return randomize_(build()).eval()
    with torch.device('meta'):
        model = build()
    return randomize_(model.to_empty(device='cpu')).eval()


def load_converted(path: str, expected_dropped: List[str],
                   **ours_kwargs) -> ResNeSt:
    """Our backbone, strictly loaded from a converted source file."""
    conversion = convert_checkpoint(read_weights(str(path)))
    assert not conversion.unplaced
    assert sorted(conversion.dropped) == sorted(expected_dropped)
    with torch.device('meta'):
        ours = ResNeSt(**ours_kwargs)
    ours.load_state_dict(conversion.state_dict, strict=True, assign=True)
    return ours.eval()


def compare(ours: ResNeSt, theirs: List[Tensor], x: Tensor, label: str):
    with torch.no_grad():
        mine = ours(x)
    assert [m.shape for m in mine] == [t.shape for t in theirs]
    diff = max_abs_diff(mine, theirs)
    print(f'\n[max abs diff] {label}: {diff:.3g}')
    assert diff <= TOL


def official_stages(model: nn.Module, x: Tensor) -> List[Tensor]:
    """Stage outputs of an official ``resnest.torch`` ResNet."""
    with torch.no_grad():
        x = model.maxpool(model.relu(model.bn1(model.conv1(x))))
        outs = []
        for layer in (model.layer1, model.layer2, model.layer3, model.layer4):
            x = layer(x)
            outs.append(x)
    return outs


OFFICIAL = sorted(official.resnest.__all__ + official.ablation.__all__)
assert len(OFFICIAL) == 11


@pytest.mark.parametrize('name', OFFICIAL)
def test_official(name, tmp_path):
    source = random_source(getattr(official, name))
    path = tmp_path / f'{name}.pth'
    torch.save(source.state_dict(), path)  # what the release files hold
    ours = load_converted(path, ['fc.weight', 'fc.bias'], arch=name)
    x = torch.randn(2, 3, input_size(name), input_size(name))
    compare(ours, official_stages(source, x), x, f'official {name}')


TIMM = sorted(timm.list_models('resnest*'))
assert len(TIMM) == 8


@pytest.mark.parametrize('name', TIMM)
def test_timm(name, tmp_path):
    source = random_source(lambda: timm.create_model(name))
    path = tmp_path / 'model.safetensors'  # timm's Hugging Face file
    save_file(source.state_dict(), str(path))
    ours = load_converted(path, ['fc.weight', 'fc.bias'], arch=name)
    x = torch.randn(2, 3, input_size(name), input_size(name))
    with torch.no_grad():
        theirs = source.forward_intermediates(
            x, indices=[1, 2, 3, 4], intermediates_only=True)
    compare(ours, theirs, x, f'timm {name}')


def build_mmpretrain_classifier(num_classes: int = 1000, **backbone):
    """mmpretrain's ImageClassifier around its own ResNeSt(**backbone)."""
    # another test may have left mmdet or mmseg as the default scope
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return MMPRETRAIN_MODELS.build(dict(
            type='ImageClassifier',
            backbone=dict(type='ResNeSt', **backbone),
            neck=dict(type='GlobalAveragePooling'),
            head=dict(type='LinearClsHead', num_classes=num_classes,
                      in_channels=2048)))


# mmpretrain's ResNeSt: the variants its configs release, plus a grouped one
# to check its width_per_group. It has no avd_first ("fast") option.
MMPRETRAIN = [
    ('resnest50', dict(depth=50, stem_channels=64)),
    ('resnest101', dict(depth=101, stem_channels=128)),
    ('resnest200', dict(depth=200, stem_channels=128)),
    ('resnest269', dict(depth=269, stem_channels=128)),
    ('resnest50_4s2x40d', dict(depth=50, stem_channels=64, radix=4, groups=2,
                               width_per_group=40)),
]


@pytest.mark.parametrize('name,kwargs', MMPRETRAIN,
                         ids=[n for n, _ in MMPRETRAIN])
def test_mmpretrain(name, kwargs, tmp_path):
    classifier = random_source(  # .item() in init: no meta device
        lambda: build_mmpretrain_classifier(out_indices=(0, 1, 2, 3),
                                            **kwargs), on_meta=False)
    path = tmp_path / f'{name}.pth'
    torch.save({'meta': {'mmpretrain_version': '1.2.0'},
                'state_dict': classifier.state_dict()}, path)
    ours_kwargs = {('base_width' if k == 'width_per_group' else k): v
                   for k, v in kwargs.items()}
    ours = load_converted(path, ['head.fc.weight', 'head.fc.bias'],
                          **ours_kwargs)
    x = torch.randn(2, 3, input_size(name), input_size(name))
    with torch.no_grad():
        theirs = classifier.backbone(x)
    compare(ours, list(theirs), x, f'mmpretrain {name}')


def build_retinanet(backbone: dict) -> nn.Module:
    with DefaultScope.overwrite_default_scope('mmdet'):
        return MMDET_MODELS.build(dict(
            type='RetinaNet',
            data_preprocessor=dict(type='DetDataPreprocessor'),
            backbone=backbone,
            neck=dict(type='FPN', in_channels=[256, 512, 1024, 2048],
                      out_channels=64, num_outs=5),
            bbox_head=dict(
                type='RetinaHead', num_classes=3, in_channels=64,
                feat_channels=64,
                anchor_generator=dict(
                    type='AnchorGenerator', octave_base_scale=4,
                    scales_per_octave=3, ratios=[0.5, 1.0, 2.0],
                    strides=[8, 16, 32, 64, 128]),
                bbox_coder=dict(type='DeltaXYWHBBoxCoder'),
                loss_cls=dict(type='FocalLoss', use_sigmoid=True),
                loss_bbox=dict(type='L1Loss'))))


def build_encoder_decoder(backbone: dict) -> nn.Module:
    head = dict(type='FCNHead', in_channels=2048, channels=32, num_classes=3,
                in_index=3)
    with DefaultScope.overwrite_default_scope('mmseg'):
        return MMSEG_MODELS.build(dict(
            type='EncoderDecoder',
            data_preprocessor=dict(type='SegDataPreProcessor'),
            backbone=backbone, decode_head=head,
            auxiliary_head=dict(head, in_channels=1024, in_index=2)))


# (id, builder, the toolbox's own ResNeSt class, its arguments, what the
# converter must leave out besides the backbone)
WHOLE_MODELS = [
    ('mmdet-retinanet-s50', build_retinanet, MMDetResNeSt,
     dict(depth=50, stem_channels=64), ('neck', 'bbox_head')),
    ('mmdet-retinanet-s101', build_retinanet, MMDetResNeSt,
     dict(depth=101, stem_channels=128), ('neck', 'bbox_head')),
    ('mmseg-fcn-s50-d8', build_encoder_decoder, MMSegResNeSt,
     dict(depth=50, stem_channels=64, strides=(1, 2, 1, 1),
          dilations=(1, 1, 2, 4), contract_dilation=True),
     ('decode_head', 'auxiliary_head')),
]


@pytest.mark.parametrize('builder,peer,kwargs,others',
                         [w[1:] for w in WHOLE_MODELS],
                         ids=[w[0] for w in WHOLE_MODELS])
def test_mmdet_mmseg_whole_model(builder, peer, kwargs, others, tmp_path):
    model = random_source(lambda: builder(dict(type=peer, **kwargs)))
    assert type(model.backbone) is peer
    path = tmp_path / 'whole.pth'
    torch.save({'meta': {'epoch': 12}, 'state_dict': model.state_dict()},
               path)
    non_backbone = [k for k in model.state_dict()
                    if not k.startswith('backbone.')]
    assert {k.split('.')[0] for k in non_backbone} == set(others)
    ours = load_converted(path, non_backbone, **kwargs)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        theirs = model.backbone(x)
    compare(ours, list(theirs), x, f'{peer.__module__} {kwargs}')
