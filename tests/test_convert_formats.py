"""Layout detection, key maps and the variant check (resnest_mm.weights).

Source state dicts come from the sources' own code (official package, timm,
mmpretrain, torchvision); shapes-only checks build on the meta device.
"""
import pytest
import timm
import torch
import torchvision
from mmpretrain.models.backbones.resnest import ResNeSt as MMPretrainResNeSt
from resnest.torch import resnest50_fast_1s4x24d

from resnest_mm.models import ARCH_PRESETS, ResNeSt
from resnest_mm.weights import (ArchMismatchError, check_fits,
                                convert_checkpoint, convert_state_dict,
                                detect_format, summarize_arch)
from resnest_mm.weights.formats import describe_dropped, split_backbone


@pytest.fixture(scope='module')
def official_sd():
    return resnest50_fast_1s4x24d().state_dict()


def meta_state_dict(**kwargs):
    with torch.device('meta'):
        return ResNeSt(**kwargs).state_dict()


def test_each_layout_is_detected(official_sd):
    assert detect_format(official_sd) == 'official'
    assert detect_format(timm.create_model('resnest14d').state_dict()) == \
        'official'
    mmpt = MMPretrainResNeSt(depth=50, stem_channels=64).state_dict()
    assert detect_format(mmpt) == 'mmpretrain'
    # mmpretrain without its stem keys is still told apart by the shortcut
    assert detect_format({k: v for k, v in mmpt.items()
                          if k.startswith('layer1.')}) == 'mmpretrain'
    assert detect_format(meta_state_dict(depth=50)) == 'resnest_mm'


def test_unknown_keys_and_plain_resnets_are_refused():
    with pytest.raises(ValueError, match='cannot tell the layout'):
        detect_format({'encoder.weight': torch.zeros(1)})
    resnet = torchvision.models.resnet18().state_dict()
    with pytest.raises(ValueError, match='not a ResNeSt checkpoint'):
        convert_state_dict(resnet)


def test_a_named_format_must_match_the_keys(official_sd):
    with pytest.raises(ValueError, match="source_format='mmpretrain' but the "
                       'keys are in the official layout'):
        convert_state_dict(official_sd, 'mmpretrain')
    with pytest.raises(ValueError, match="source_format='caffe2' is not"):
        convert_state_dict(official_sd, 'caffe2')
    assert convert_state_dict(official_sd, 'timm').source_format == 'official'


def test_official_stem_and_head_map(official_sd):
    conv = convert_state_dict(official_sd)
    assert conv.dropped == {'fc.weight': 'classifier head',
                            'fc.bias': 'classifier head'}
    assert not conv.unplaced
    assert torch.equal(conv.state_dict['stem.6.weight'],
                       official_sd['conv1.6.weight'])
    assert torch.equal(conv.state_dict['stem.7.running_var'],
                       official_sd['bn1.running_var'])
    assert sorted(conv.state_dict) == sorted(
        meta_state_dict(arch='resnest50_fast_1s4x24d'))


def test_unknown_block_keys_are_kept_as_unplaced(official_sd):
    sd = dict(official_sd, **{'layer1.0.se.fc.weight': torch.zeros(1),
                              'layer1.0.downsample.0.weight': torch.zeros(1)})
    conv = convert_state_dict(sd)
    assert sorted(conv.unplaced) == ['layer1.0.downsample.0.weight',
                                     'layer1.0.se.fc.weight']


def test_mmpretrain_unpooled_shortcut_moves_up_one():
    mmpt = MMPretrainResNeSt(depth=50, stem_channels=64).state_dict()
    conv = convert_state_dict(mmpt)
    assert not conv.unplaced and not conv.dropped
    # layer1 has no avg-pool in mmpretrain: conv, bn at 0, 1 -> ours 1, 2
    assert torch.equal(conv.state_dict['layer1.0.downsample.1.weight'],
                       mmpt['layer1.0.downsample.0.weight'])
    assert torch.equal(conv.state_dict['layer2.0.downsample.1.weight'],
                       mmpt['layer2.0.downsample.1.weight'])
    assert sorted(conv.state_dict) == sorted(
        meta_state_dict(arch='resnest50d'))


def test_whole_model_checkpoints_keep_the_backbone():
    backbone = meta_state_dict(arch='resnest14d')
    detector = {f'module.backbone.{k}': v for k, v in backbone.items()}
    detector['module.neck.lateral_convs.0.conv.weight'] = torch.zeros(1)
    detector['module.bbox_head.retina_cls.weight'] = torch.zeros(1)
    conv = convert_checkpoint({'meta': {}, 'state_dict': detector})
    assert conv.source_format == 'resnest_mm'
    assert sorted(conv.state_dict) == sorted(backbone)
    assert describe_dropped(conv.dropped) == (
        'not part of the backbone (neck of the whole model) '
        '(neck.lateral_convs.0.conv.weight); not part of the backbone '
        '(bbox_head of the whole model) (bbox_head.retina_cls.weight)')
    # a backbone dict is left alone even if it also holds other keys
    assert split_backbone(dict(backbone, **{'backbone.x': 0}))[1] == {}


@pytest.mark.parametrize('arch', sorted(ARCH_PRESETS))
def test_every_preset_is_recognised_from_its_shapes(arch):
    summary = summarize_arch(meta_state_dict(arch=arch))
    preset = ARCH_PRESETS[arch]
    assert summary.depth == preset.depth
    assert arch in summary.preset_names(avd_first=preset.avd_first)
    assert all(ARCH_PRESETS[n].avd_first == preset.avd_first
               for n in summary.preset_names(avd_first=preset.avd_first))


def test_another_depth_is_refused_with_the_variant_it_looks_like():
    with pytest.raises(ArchMismatchError) as err:
        check_fits(meta_state_dict(depth=50, stem_channels=64),
                   meta_state_dict(arch='resnest101e'))
    msg = str(err.value)
    assert 'layer3 has 23 blocks in the checkpoint, 6 in the model' in msg
    assert ('stem.0.weight: checkpoint (64, 3, 3, 3), model (32, 3, 3, 3)'
            in msg)
    assert 'looks like resnest101e / resnest101 (depth=101, ' in msg
    assert "the model is depth=50, stem_channels=64" in msg
    assert "Build the backbone with arch='resnest101e'" in msg


def test_other_widths_are_refused():
    with pytest.raises(ArchMismatchError, match=r'layer1\.0\.conv1\.weight: '
                       r'checkpoint \(80, 64, 1, 1\), model \(64, 64, 1, 1\)'
                       r'.*looks like resnest50d_4s2x40d / '
                       r'resnest50_fast_4s2x40d'):
        check_fits(meta_state_dict(arch='resnest50d'),
                   meta_state_dict(arch='resnest50d_4s2x40d'))


def test_recorded_avd_first_is_checked():
    same_shapes = meta_state_dict(arch='resnest50_fast_2s1x64d')
    with pytest.raises(ArchMismatchError,
                       match='trained with avd_first=True, the model has '
                       "avd_first=False.*arch='resnest50_fast_2s1x64d'"):
        check_fits(meta_state_dict(arch='resnest50d'), same_shapes,
                   model_avd_first=False,
                   recorded=dict(arch='resnest50_fast_2s1x64d',
                                 avd_first=True))
    # without a record the weights cannot tell, and pass
    check_fits(meta_state_dict(arch='resnest50d'), same_shapes, False)


def test_stages_the_model_does_not_build_are_left_out():
    full = meta_state_dict(arch='resnest50d')
    three = meta_state_dict(arch='resnest50d', num_stages=3,
                            strides=(1, 2, 2), dilations=(1, 1, 1),
                            out_indices=(0, 1, 2))
    unbuilt = check_fits(three, full)
    assert sorted(unbuilt) == sorted(k for k in full
                                     if k.startswith('layer4.'))
    assert set(unbuilt.values()) == {
        'layer4 is not built (the model has 3 stages)'}
