import pytest
import torch
from mmdet.models.backbones.resnest import \
    SplitAttentionConv2d as MMDetSplitAttention

from conftest import ConvOutput, randomize_
from resnest_mm.benchmark.timing import memory_bytes
from resnest_mm.models.split_attention import (SplitAttentionConv2d,
                                               attention_channels,
                                               radix_softmax)


def test_radix_softmax_normalises_over_splits_within_each_group():
    radix, groups, per = 3, 2, 5
    logits = torch.randn(4, groups * radix * per, 1, 1)
    weights = radix_softmax(logits, radix, groups)
    assert weights.shape == (4, radix, groups * per, 1, 1)
    torch.testing.assert_close(weights.sum(1), torch.ones(4, groups * per, 1, 1))
    # fc2's output is group-major: logit (g, r, c) sits at g*R*per + r*per + c
    g, r, c = 1, 2, 3
    column = logits[0, [g * radix * per + k * per + c for k in range(radix)]]
    expected = torch.softmax(column.flatten(), 0)[r]
    assert weights[0, r, g * per + c].item() == pytest.approx(expected.item())


def test_radix_one_is_a_sigmoid_gate():
    logits = torch.randn(2, 8, 1, 1)
    torch.testing.assert_close(
        radix_softmax(logits, 1, 1)[:, 0], torch.sigmoid(logits))


def test_attention_width_has_a_floor_of_32():
    assert attention_channels(64, 2, 4) == 32
    assert attention_channels(16, 1, 4) == 32
    assert attention_channels(512, 2, 4) == 256


@pytest.mark.parametrize('radix,groups', [(1, 1), (2, 1), (4, 2), (1, 4)])
def test_matches_mmdet_layer(radix, groups):
    kw = dict(in_channels=64, channels=64, kernel_size=3, padding=1,
              groups=groups, radix=radix)
    ours = randomize_(SplitAttentionConv2d(**kw))
    theirs = MMDetSplitAttention(**kw)
    theirs.load_state_dict(ours.state_dict(), strict=True)
    x = torch.randn(2, 64, 9, 9)
    for mode in (False, True):
        ours.train(mode), theirs.train(mode)
        torch.testing.assert_close(ours(x), theirs(x), atol=1e-5, rtol=0)


def test_gradients_match_mmdet_layer():
    kw = dict(in_channels=32, channels=32, kernel_size=3, padding=1, radix=2)
    ours = randomize_(SplitAttentionConv2d(**kw))
    theirs = MMDetSplitAttention(**kw)
    theirs.load_state_dict(ours.state_dict())
    x = torch.randn(2, 32, 8, 8)
    ours(x).square().sum().backward()
    theirs(x).square().sum().backward()
    # fp32 sums in another order: compare against the gradients' own scale
    # (fc1.bias's gradient is zero up to rounding, the BN after it cancels it)
    scale = max(p.grad.abs().max().item() for p in ours.parameters())
    for (name, p), q in zip(ours.named_parameters(), theirs.parameters()):
        assert (p.grad - q.grad).abs().max().item() <= 1e-4 * scale, name


def test_training_with_one_image_uses_running_stats_of_the_attention_norm():
    layer = randomize_(SplitAttentionConv2d(32, 32, 3, padding=1)).train()
    peer = MMDetSplitAttention(32, 32, 3, padding=1).train()
    peer.load_state_dict(layer.state_dict())
    x = torch.randn(1, 32, 8, 8)
    with pytest.raises(ValueError, match='more than 1 value per channel'):
        peer(x)  # the peer's behaviour this guards against

    bn0_mean = layer.bn0.running_mean.clone()
    bn1_mean = layer.bn1.running_mean.clone()
    out = layer(x)
    assert out.shape == (1, 32, 8, 8) and torch.isfinite(out).all()
    # bn1 normalised with (and kept) its running statistics ...
    torch.testing.assert_close(layer.bn1.running_mean, bn1_mean)
    # ... while bn0, which sees 64 values per channel, still trained.
    assert not torch.equal(layer.bn0.running_mean, bn0_mean)
    # The attention path then equals eval-mode bn1 on the same context.
    layer.bn1.eval()
    torch.testing.assert_close(layer(x), out)


@pytest.mark.parametrize('radix', [2, 4])
def test_inference_holds_less_than_mmdet_layer(radix):
    """Eval-mode peak memory, in NHWC, after the conv (``ConvOutput``: the
    conv's workspace depends on the CPU). Both hold the conv output and
    bn0's, ``2R`` output maps; mmdet then also holds its ``(B, R, C, H, W)``
    weighted splits beside bn0's output and their sum, one map more than
    ours, which accumulates split by split."""
    kw = dict(in_channels=32, channels=32, kernel_size=3, padding=1,
              radix=radix)
    ours = randomize_(SplitAttentionConv2d(**kw)).eval()
    theirs = MMDetSplitAttention(**kw).eval()
    theirs.load_state_dict(ours.state_dict())
    x = torch.randn(2, 32, 32, 32).contiguous(memory_format=torch.channels_last)
    output_bytes = x.numel() * x.element_size()  # channels == in_channels
    peaks = {}
    for name, layer in (('ours', ours), ('mmdet', theirs)):
        layer.to(memory_format=torch.channels_last)
        layer.conv = ConvOutput(layer.conv, x)
        with torch.no_grad():
            layer(x)
            peaks[name] = memory_bytes(lambda: layer(x), x.device)[0]
    assert peaks['ours'] <= peaks['mmdet'] - output_bytes
