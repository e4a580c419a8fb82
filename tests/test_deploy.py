"""Deploy mode: BatchNorms folded into convs, same outputs, inference only."""
import copy

import pytest
import torch
from mmcv.cnn.bricks.conv_ws import ConvWS2d
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from conftest import ConvOutput, max_abs_diff, randomize_
from resnest_mm.models import ResNeSt, SplitAttentionConv2d
from resnest_mm.models.deploy import (can_fold, fuse_conv_bn,
                                      pointwise_conv_as_linear)
from resnest_mm.benchmark.timing import memory_bytes

TOL = 1e-4
R14 = dict(arch='resnest14d')

CASES = [
    ('resnest14d', R14),
    ('radix1_groups4', dict(depth=14, radix=1, groups=4, base_width=24)),
    ('radix4_groups2', dict(depth=14, radix=4, groups=2, base_width=40)),
    ('avd_first', dict(R14, avd_first=True)),
    ('caffe_no_avd', dict(R14, style='caffe', avg_down_stride=False)),
    ('dilated_os8', dict(R14, strides=(1, 2, 1, 1), dilations=(1, 1, 2, 4),
                         contract_dilation=True)),
    ('out_indices_1_3', dict(R14, out_indices=(1, 3))),
    ('group_norm', dict(R14, norm_cfg=dict(type='GN', num_groups=16))),
    ('context_block', dict(R14, plugins=[
        dict(cfg=dict(type='ContextBlock', ratio=1. / 4),
             position='after_conv3')])),
]


@pytest.mark.parametrize(
    'kwargs,channels_last',
    [pytest.param(kw, True, id=name) for name, kw in CASES] + [
        pytest.param(kw, False, id=f'{name}-nchw')
        for name, kw in CASES if name in ('resnest14d', 'group_norm')])
def test_deploy_outputs_equal_eval_mode(kwargs, channels_last):
    model = randomize_(ResNeSt(**kwargs)).eval()
    deploy = copy.deepcopy(model).switch_to_deploy(channels_last)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        want, got = model(x), deploy(x)
    assert [g.shape for g in got] == [w.shape for w in want]
    assert max_abs_diff(got, want) <= TOL
    if channels_last:
        assert all(g.is_contiguous(memory_format=torch.channels_last)
                   for g in got)


def test_every_batch_norm_is_folded():
    model = ResNeSt(**R14)
    n_norms = sum(isinstance(m, _BatchNorm) for m in model.modules())
    model.switch_to_deploy()
    assert not any(isinstance(m, _BatchNorm) for m in model.modules())
    layers = [m for m in model.modules()
              if isinstance(m, (nn.Conv2d, nn.Linear))]
    with_bias = [c for c in layers if c.bias is not None]
    # every conv had a norm except fc2 (bias already): 3 stem, 3 per block
    # + split-attention fc1 (now linear), and one shortcut per stage
    assert len(with_bias) == n_norms + 4  # + the four fc2
    assert not any(k.endswith('running_mean') for k in model.state_dict())


def test_group_norm_stays_and_still_works():
    model = ResNeSt(**R14, norm_cfg=dict(type='GN', num_groups=16))
    model.switch_to_deploy()
    assert any(isinstance(m, nn.GroupNorm) for m in model.modules())


def test_deploy_is_inference_only():
    model = ResNeSt(**R14).switch_to_deploy()
    assert model.deploy and not model.training
    assert not any(p.requires_grad for p in model.parameters())
    with pytest.raises(RuntimeError, match=r'train\(True\) after '
                       'switch_to_deploy'):
        model.train()
    model.eval()  # still allowed
    assert model.switch_to_deploy() is model  # a second call changes nothing


@pytest.mark.parametrize('radix,groups', [(1, 1), (2, 1), (4, 2)])
def test_split_attention_layer_deploy(radix, groups):
    layer = randomize_(SplitAttentionConv2d(32, 32, 3, padding=1,
                                            radix=radix, groups=groups))
    layer.eval()
    x = torch.randn(3, 32, 9, 9)
    with torch.no_grad():
        want = layer(x)
        layer.switch_to_deploy()
        got = layer(x)
    assert (got - want).abs().max() <= 1e-5


@pytest.mark.parametrize('radix', [2, 4])
def test_split_attention_deploy_holds_the_splits_and_one_output(radix):
    """Deploy-mode peak memory of the layer in NHWC after its conv
    (``ConvOutput``: the conv's workspace depends on the CPU): the conv's R
    splits (ReLU in place, no norm output) and the output map; the
    attention path's pooled vectors are a few hundred bytes."""
    layer = randomize_(SplitAttentionConv2d(32, 32, 3, padding=1,
                                            radix=radix))
    layer.switch_to_deploy()
    layer.to(memory_format=torch.channels_last)
    x = torch.randn(2, 32, 32, 32).contiguous(memory_format=torch.channels_last)
    output_bytes = x.numel() * x.element_size()
    layer.conv = ConvOutput(layer.conv, x)
    with torch.no_grad():
        layer(x)
        peak = memory_bytes(lambda: layer(x), x.device)[0]
    assert peak <= (radix + 1) * output_bytes + 4096


@pytest.mark.parametrize('bias,affine', [(False, True), (True, True),
                                         (True, False)])
def test_fuse_conv_bn_equals_the_pair(bias, affine):
    conv = nn.Conv2d(6, 8, 3, stride=2, padding=1, groups=2, bias=bias)
    norm = nn.BatchNorm2d(8, affine=affine).eval()
    with torch.no_grad():
        for t in [conv.weight, conv.bias, *norm.parameters(),
                  norm.running_mean]:
            if t is not None:
                t.copy_(torch.randn_like(t))
        norm.running_var.uniform_(0.5, 1.5)
    x = torch.randn(2, 6, 11, 11)
    with torch.no_grad():
        want = norm(conv(x))
        error = (fuse_conv_bn(conv, norm)(x) - want).abs().max()
    # fp32 rounding of 27-term sums with outputs up to ~30: at most 4.6e-7
    # of the output scale over 600 random draws (up to 1.5e-5 absolute)
    assert error <= 1e-6 * want.abs().max()


def test_only_plain_conv_and_batch_norm_fold():
    assert can_fold(nn.Conv2d(4, 4, 1), nn.SyncBatchNorm(4))
    assert not can_fold(ConvWS2d(4, 4, 1), nn.BatchNorm2d(4))
    assert not can_fold(nn.Conv2d(4, 4, 1), nn.GroupNorm(2, 4))
    assert not can_fold(nn.Conv2d(4, 4, 1),
                        nn.BatchNorm2d(4, track_running_stats=False))


@pytest.mark.parametrize('groups,bias', [(1, True), (4, True), (2, False)])
def test_pointwise_conv_becomes_linear(groups, bias):
    conv = nn.Conv2d(8, 12, 1, groups=groups, bias=bias)
    x = torch.randn(3, 8, 1, 1)
    with torch.no_grad():
        want = conv(x).flatten(1)
        got = pointwise_conv_as_linear(conv)(x.flatten(1))
    assert (got - want).abs().max() <= 1e-6


def test_only_a_pointwise_conv_becomes_linear():
    with pytest.raises(ValueError, match='only a 1x1 conv'):
        pointwise_conv_as_linear(nn.Conv2d(8, 8, 3))


def test_attention_mlp_is_linear_after_deploy():
    layer = randomize_(SplitAttentionConv2d(32, 32, 3, padding=1, radix=2))
    layer.switch_to_deploy()
    assert isinstance(layer.fc1, nn.Linear)
    assert isinstance(layer.fc2, nn.Linear)
    gn = SplitAttentionConv2d(32, 32, 3, padding=1, radix=2,
                              norm_cfg=dict(type='GN', num_groups=8))
    gn.switch_to_deploy()  # GroupNorm after fc1 needs its (B, C, 1, 1) maps
    assert isinstance(gn.fc1, nn.Conv2d)


def test_compiles_as_one_graph():
    """No graph breaks under torch.compile: ``fullgraph=True`` raises on any
    (as ``torch._dynamo.explain(model)(x).graph_break_count`` would count
    them). The eager backend keeps CI fast: it traces, with no codegen."""
    model = randomize_(ResNeSt(**R14)).eval()
    deploy = copy.deepcopy(model).switch_to_deploy()
    x = torch.randn(2, 3, 64, 64)
    torch._dynamo.reset()
    compiled = torch.compile(deploy, backend='eager', fullgraph=True)
    with torch.no_grad():
        assert max_abs_diff(compiled(x), model(x)) <= TOL
