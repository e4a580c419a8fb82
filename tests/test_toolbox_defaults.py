"""A minimal config behaves as the toolbox's own ResNeSt, in each toolbox.

``dict(type='ResNeSt', depth=...)`` built through mmdet's ``MODELS`` must equal
mmdet's class built from the same dict, and through mmseg's ``MODELS`` mmseg's
class, for every constructor argument the user leaves out. The arguments are
read from the peers' ``__init__`` signatures along their MRO, so an argument a
toolbox adds (or a default it changes) is checked without editing this file.
"""
import functools
import inspect
from typing import Any, Dict

import pytest
import torch
from mmdet.models.backbones.resnest import ResNeSt as MMDetResNeSt
from mmengine.registry import DefaultScope
from mmseg.models.backbones.resnest import ResNeSt as MMSegResNeSt
from torch.nn.modules.batchnorm import _BatchNorm

import resnest_mm  # noqa: F401  (registers ResNeSt)
from conftest import max_abs_diff, randomize_, sgd_step
from resnest_mm.models import ResNeSt

TOL = 1e-5
PEERS = {'mmdet': MMDetResNeSt, 'mmseg': MMSegResNeSt}
# Odd, non-square: every ceil-mode pool and padding path is exercised.
INPUT = (2, 3, 45, 58)
CASES = [(toolbox, depth) for toolbox in PEERS for depth in (50, 101)]


def registered(toolbox: str, method: str, *args: Any) -> Any:
    """``<toolbox>.registry.MODELS.<method>(*args)`` as the toolbox's own
    configs run it: under its default scope. mmengine resolves a name in the
    *current* default scope's registry, whichever ``MODELS`` is called, and
    other tests leave other scopes current."""
    models = __import__(f'{toolbox}.registry', fromlist=['MODELS']).MODELS
    with DefaultScope.overwrite_default_scope(toolbox):
        return getattr(models, method)(*args)


def peer_arguments(cls: type) -> Dict[str, Any]:
    """Every named ``__init__`` argument along ``cls``'s MRO -> its default
    (the most derived class's), ``inspect.Parameter.empty`` if required."""
    args: Dict[str, Any] = {}
    for klass in cls.__mro__:
        init = klass.__dict__.get('__init__')
        if init is None:
            continue
        for name, param in inspect.signature(init).parameters.items():
            if name != 'self' and param.kind not in (param.VAR_POSITIONAL,
                                                     param.VAR_KEYWORD):
                args.setdefault(name, param.default)
    return args


@functools.lru_cache(maxsize=None)
def user_settable(cls: type, name: str) -> bool:
    """False for arguments a subclass fixes (ResNetV1d passes
    ``deep_stem=True, avg_down=True`` itself: giving them is a TypeError)."""
    try:
        cls(depth=50, **{name: peer_arguments(cls)[name]})
    except TypeError as err:
        assert 'multiple values' in str(err), err
        return False
    return True


@pytest.fixture(scope='module', autouse=True)
def foreign_scope():
    """Run every test with mmengine's scope current, as a Runner test leaves
    it: the builds below must not depend on the order tests run in."""
    with DefaultScope.overwrite_default_scope('mmengine'):
        yield


@pytest.fixture(scope='module', params=CASES, ids=[f'{t}-{d}' for t, d in CASES])
def pair(request):
    """(toolbox, ours, theirs): ``dict(type='ResNeSt', depth=...)`` through the
    toolbox's ``MODELS``, and the toolbox's own class from the same dict."""
    toolbox, depth = request.param
    ours = registered(toolbox, 'build', dict(type='ResNeSt', depth=depth))
    assert type(ours) is ResNeSt
    return toolbox, ours, PEERS[toolbox](depth=depth)


@pytest.mark.parametrize('toolbox', PEERS)
def test_signature_walk_finds_the_peer_arguments(toolbox):
    # The walk must reach ResNet's arguments through ResNetV1d's **kwargs.
    args = peer_arguments(PEERS[toolbox])
    assert {'depth', 'stem_channels', 'norm_eval', 'radix', 'base_width',
            'frozen_stages', 'init_cfg'} <= set(args)
    if toolbox == 'mmseg':
        assert {'multi_grid', 'contract_dilation'} <= set(args)


def test_every_left_out_argument_takes_the_toolbox_default(pair):
    toolbox, ours, theirs = pair
    peer = PEERS[toolbox]
    ours_args = inspect.signature(ResNeSt).parameters
    checked = []
    for name in peer_arguments(peer):
        if not user_settable(peer, name):
            continue
        assert name in ours_args, f'{toolbox} argument {name!r} is refused'
        if name == 'depth' or not hasattr(theirs, name):
            continue  # in_channels is not kept; the network shows it below
        assert hasattr(ours, name), name
        assert getattr(ours, name) == getattr(theirs, name), (
            name, getattr(ours, name), getattr(theirs, name))
        checked.append(name)
    assert {'stem_channels', 'norm_eval', 'base_width', 'groups', 'radix',
            'with_cp', 'zero_init_residual', 'style'} <= set(checked)


def test_minimal_config_computes_what_the_toolbox_class_computes(pair):
    _, ours, theirs = pair
    ours_sd, theirs_sd = ours.state_dict(), theirs.state_dict()
    assert {k: v.shape for k, v in ours_sd.items()} == {
        k: v.shape for k, v in theirs_sd.items()}
    randomize_(theirs, seed=1)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    x = torch.randn(*INPUT)

    ours.eval(), theirs.eval()
    with torch.no_grad():
        assert max_abs_diff(ours(x), theirs(x)) <= TOL

    # Train mode: norm_eval (mmdet True, mmseg False) decides whether the
    # BatchNorms normalise with batch statistics and update running ones.
    ours.train(), theirs.train()
    assert [m.training for m in ours.modules() if isinstance(m, _BatchNorm)] \
        == [m.training for m in theirs.modules()
            if isinstance(m, _BatchNorm)]
    assert max_abs_diff(sgd_step(ours, x), sgd_step(theirs, x)) <= TOL
    ours_sd, theirs_sd = ours.state_dict(), theirs.state_dict()
    assert max_abs_diff([ours_sd[k] for k in theirs_sd],
                        list(theirs_sd.values())) <= TOL


@pytest.mark.parametrize('toolbox', PEERS)
def test_preset_architecture_wins_over_the_toolbox_stem(toolbox):
    # Neither toolbox knows arch=; a named variant keeps its own stem width.
    model = registered(toolbox, 'build',
                       dict(type='ResNeSt', arch='resnest101e'))
    assert model.stem_channels == 128
    assert model.norm_eval is (toolbox == 'mmdet')


def test_class_used_directly_keeps_the_official_widths():
    assert ResNeSt(depth=101).stem_channels == 128
    assert ResNeSt(depth=50).stem_channels == 64


@pytest.mark.parametrize('toolbox', PEERS)
def test_registered_builder_signature_shows_the_toolbox_defaults(toolbox):
    params = inspect.signature(
        registered(toolbox, 'get', 'ResNeSt')).parameters
    assert params['stem_channels'].default == 64
    theirs = peer_arguments(PEERS[toolbox])
    assert params['norm_eval'].default == theirs['norm_eval']


#: Bottlenecks of ResNeSt-50: 3 + 4 + 6 + 3.
BLOCKS_50 = 16


@pytest.mark.parametrize('toolbox', PEERS)
def test_init_weights_differs_only_in_the_zeroed_last_norms(toolbox):
    """``init_weights()`` of a minimal config and of the toolbox's class.

    Both say ``zero_init_residual=True``; ours zeroes every bottleneck's last
    norm (each block starts as its shortcut), theirs cannot: their ResNet
    looks for ``block is Bottleneck``, which ResNeSt's block never is, so
    their last norms stay 1. Nothing else may differ: built from different
    seeds, initialised from the same one, every other tensor is equal (same
    Kaiming draws in the same module order, same constant norms)."""
    torch.manual_seed(1)
    ours = registered(toolbox, 'build', dict(type='ResNeSt', depth=50))
    torch.manual_seed(2)
    theirs = PEERS[toolbox](depth=50)
    assert ours.zero_init_residual and theirs.zero_init_residual
    for model in (ours, theirs):
        torch.manual_seed(0)
        model.init_weights()

    last_norms = {
        f'{stage}.{i}.{block.norm3_name}'
        for stage in theirs.res_layers
        for i, block in enumerate(getattr(theirs, stage))}
    assert len(last_norms) == BLOCKS_50
    norms = {name: m for name, m in theirs.named_modules()
             if isinstance(m, _BatchNorm)}
    assert last_norms < set(norms)
    for name, norm in norms.items():  # theirs: every norm at weight 1, bias 0
        assert (norm.weight == 1).all() and (norm.bias == 0).all(), name

    ours_sd, theirs_sd = ours.state_dict(), theirs.state_dict()
    assert list(ours_sd) == list(theirs_sd)
    differ = {key for key in theirs_sd
              if not torch.equal(ours_sd[key], theirs_sd[key])}
    assert differ == {f'{name}.weight' for name in last_norms}
    for name in last_norms:
        assert (ours_sd[f'{name}.weight'] == 0).all(), name
