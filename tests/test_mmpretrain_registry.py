"""``type='ResNeSt'`` in MMPretrain's ``MODELS`` builds our class, with
MMPretrain's defaults for every argument a config leaves out.

The checks mirror ``tests/test_toolbox_defaults.py`` (whose helpers they
use): every argument of MMPretrain's class along its MRO, and eval and train
outputs equal to MMPretrain's class on MMPretrain's own state dict, loaded
unchanged (its stem and unstrided shortcut keys differ from ours; the load
hook converts them). MMPretrain's own names (``width_per_group``,
``expansion``, ``drop_path_rate``) are accepted. ``tests/test_registry.py``
checks that everything else works without MMPretrain.
"""
import inspect

import pytest
import torch
from mmengine.config import Config
from mmpretrain.models.backbones.resnest import ResNeSt as MMPretrainResNeSt
from torch.nn.modules.batchnorm import _BatchNorm

import resnest_mm  # noqa: F401  (registers ResNeSt)
from conftest import max_abs_diff, randomize_, sgd_step
from resnest_mm.models import ResNeSt
from resnest_mm.models.bottleneck import ResNeStBottleneck
from resnest_mm.weights.formats import convert_state_dict
from test_toolbox_defaults import foreign_scope  # noqa: F401  (autouse)
from test_toolbox_defaults import (INPUT, TOL, peer_arguments, registered,
                                   user_settable)

#: MMPretrain's arguments that our class names otherwise or does not keep:
#: how to read their value off our backbone.
OURS_FOR = {
    'width_per_group': lambda model: model.base_width,
    'expansion': lambda model: ResNeStBottleneck.expansion,
}


def build(**args) -> ResNeSt:
    """``dict(type='ResNeSt', **args)`` through MMPretrain's ``MODELS``."""
    model = registered('mmpretrain', 'build', dict(type='ResNeSt', **args))
    assert type(model) is ResNeSt
    return model


def layer_lists(init_cfg: list) -> list:
    """``init_cfg`` with every ``layer`` a list: mmengine reads
    ``layer='Conv2d'`` and ``layer=['Conv2d']`` alike."""
    return [dict(c, layer=[c['layer']] if isinstance(c['layer'], str)
                 else list(c['layer'])) for c in init_cfg]


@pytest.fixture(scope='module', params=[50, 101])
def pair(request):
    """(ours, theirs) from ``dict(type='ResNeSt', depth=...)`` alone."""
    depth = request.param
    return build(depth=depth), MMPretrainResNeSt(depth=depth)


def test_signature_walk_finds_mmpretrain_arguments():
    # through ResNetV1d's **kwargs to ResNet's arguments
    assert {'depth', 'width_per_group', 'stem_channels', 'out_indices',
            'norm_eval', 'expansion', 'drop_path_rate', 'init_cfg'} <= set(
                peer_arguments(MMPretrainResNeSt))


def test_every_left_out_argument_takes_the_mmpretrain_default(pair):
    ours, theirs = pair
    accepted = inspect.signature(
        registered('mmpretrain', 'get', 'ResNeSt')).parameters
    checked = []
    for name in peer_arguments(MMPretrainResNeSt):
        if not user_settable(MMPretrainResNeSt, name):
            continue  # deep_stem, avg_down: fixed by ResNetV1d
        assert name in accepted, f'mmpretrain argument {name!r} is refused'
        if name == 'depth' or not hasattr(theirs, name):
            continue  # in_channels, drop_path_rate are not kept
        value = getattr(theirs, name)
        mine = OURS_FOR.get(name, lambda model: getattr(model, name))(ours)
        if name == 'init_cfg':
            value, mine = layer_lists(value), layer_lists(mine)
        assert mine == value, (name, mine, value)
        checked.append(name)
    assert {'stem_channels', 'out_indices', 'norm_eval', 'width_per_group',
            'groups', 'radix', 'expansion', 'zero_init_residual', 'init_cfg',
            'style'} <= set(checked)


def test_minimal_config_computes_what_the_mmpretrain_class_computes(pair):
    ours, theirs = pair
    randomize_(theirs, seed=1)
    # MMPretrain's own state dict, unchanged: the load hook maps its keys
    ours.load_state_dict(theirs.state_dict(), strict=True)
    x = torch.randn(*INPUT)

    ours.eval(), theirs.eval()
    with torch.no_grad():
        assert max_abs_diff(ours(x), theirs(x)) <= TOL

    # Train mode: both normalise with batch statistics (norm_eval=False)
    # and update the running ones.
    ours.train(), theirs.train()
    modes = [[m.training for m in model.modules()
              if isinstance(m, _BatchNorm)] for model in (ours, theirs)]
    # 3 in the stem, 4 per block, 4 on the shortcuts
    assert modes[0] == modes[1] == [True] * (7 + 4 * sum(ours.stage_blocks))
    assert max_abs_diff(sgd_step(ours, x), sgd_step(theirs, x)) <= TOL
    theirs_sd = convert_state_dict(theirs.state_dict(), 'mmpretrain')
    ours_sd = ours.state_dict()
    assert set(ours_sd) == set(theirs_sd.state_dict)
    assert max_abs_diff([ours_sd[k] for k in theirs_sd.state_dict],
                        list(theirs_sd.state_dict.values())) <= TOL


def test_init_weights_zero_the_last_norm_of_every_block_as_mmpretrain(pair):
    # zero_init_residual=True in both, from their default init_cfg
    ours, theirs = pair
    ours.init_weights(), theirs.init_weights()
    for model in (ours, theirs):
        blocks = [m for name in model.res_layers for m in getattr(model, name)]
        assert len(blocks) == sum(ours.stage_blocks)
        assert all(not b.norm3.weight.any() for b in blocks)


def test_mmpretrain_classifier_checkpoint_loads_unchanged(tmp_path):
    """MMPretrain's own ResNeSt-50 ImageNet config builds a classifier with
    our backbone that computes what the one with MMPretrain's backbone
    computes, from that one's state dict."""
    (tmp_path / 'cfg.py').write_text(
        "_base_ = 'mmpretrain::resnest/resnest50_32xb64_in1k.py'\n")
    cfg = Config.fromfile(tmp_path / 'cfg.py')
    ours = registered('mmpretrain', 'build', cfg.model)
    cfg.model.backbone.type = MMPretrainResNeSt
    theirs = registered('mmpretrain', 'build', cfg.model)
    assert type(ours.backbone) is ResNeSt
    assert type(theirs.backbone) is MMPretrainResNeSt
    randomize_(theirs, seed=2)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    ours.eval(), theirs.eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        logits = ours(x, mode='tensor'), theirs(x, mode='tensor')
    assert logits[0].shape == (2, 1000)
    assert max_abs_diff(*logits) <= TOL


@pytest.mark.parametrize('args', [
    dict(depth=50, groups=2, width_per_group=40),
    dict(depth=50, radix=4, reduction_factor=2, stem_channels=32),
])
def test_mmpretrain_names_build_mmpretrain_networks(args):
    # the same dict builds the same network (its state dict, converted)
    ours = build(**args)
    theirs = MMPretrainResNeSt(**args).state_dict()
    assert {k: v.shape for k, v in ours.state_dict().items()} == {
        k: v.shape for k, v in convert_state_dict(
            theirs, 'mmpretrain').state_dict.items()}


@pytest.mark.parametrize('args,shown', [
    (dict(depth=14), dict(depth=14, out_channels=(2048, ),
                          stem_channels=64)),
    (dict(arch='resnest101e'), dict(depth=101, stem_channels=128,
                                    out_channels=(2048, ), norm_eval=False)),
    (dict(arch='resnest50_fast_2s2x40d'), dict(
        avd_first=True, groups=2, base_width=40, out_indices=(3, ))),
    (dict(depth=50, out_indices=(0, 1, 2, 3)), dict(
        out_channels=(256, 512, 1024, 2048))),
])
def test_our_variants_reach_classification(args, shown):
    # depths 14/26, the presets (a preset's stem wins over MMPretrain's 64)
    model = build(**args)
    assert {k: getattr(model, k) for k in shown} == shown


def test_mmpretrain_only_arguments_are_checked():
    with pytest.raises(ValueError, match=r'expansion=2: .*4x'):
        build(depth=50, expansion=2)
    with pytest.raises(ValueError, match=r'width_per_group=40 and '
                       r'base_width=24'):
        build(depth=50, groups=2, width_per_group=40, base_width=24)
    with pytest.warns(UserWarning, match=r'drop_path_rate=0.1 has no effect'):
        build(depth=14, drop_path_rate=0.1)
    assert build(depth=14, expansion=4).out_channels == (2048, )


def test_registered_builder_signature_shows_the_mmpretrain_defaults():
    params = inspect.signature(
        registered('mmpretrain', 'get', 'ResNeSt')).parameters
    theirs = peer_arguments(MMPretrainResNeSt)
    for name in ('stem_channels', 'out_indices', 'norm_eval',
                 'width_per_group', 'expansion', 'drop_path_rate'):
        assert params[name].default == theirs[name], name
