import copy

import pytest
import torch
from mmcv.ops import DeformConv2dPack
from mmdet.models.backbones.resnest import ResNeSt as MMDetResNeSt
from torch import nn

from conftest import randomize_
from resnest_mm.models import ResNeSt
from resnest_mm.models.bottleneck import ResNeStBottleneck, bottleneck_width


def _saved_bytes(fn):
    """Bytes autograd keeps for backward while ``fn`` runs."""
    total = [0]

    def pack(t):
        total[0] += t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn()
    return out, total[0]


@pytest.mark.parametrize('frozen_stages', [-1, 1])
def test_with_cp_equals_plain_training_and_saves_memory(frozen_stages):
    kw = dict(depth=50, stem_channels=64, norm_eval=False,
              frozen_stages=frozen_stages,
              drop_block=dict(prob=0.1, block_size=3))
    plain = randomize_(ResNeSt(**kw)).train()
    cp = ResNeSt(with_cp=True, **kw).train()
    cp.load_state_dict(plain.state_dict())
    x = torch.randn(2, 3, 64, 64)

    torch.manual_seed(1)
    out_plain, bytes_plain = _saved_bytes(lambda: plain(x))
    sum(o.square().mean() for o in out_plain).backward()
    torch.manual_seed(1)
    out_cp, bytes_cp = _saved_bytes(lambda: cp(x))
    sum(o.square().mean() for o in out_cp).backward()

    for a, b in zip(out_plain, out_cp):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
    grads = [(n, p.grad, q.grad) for (n, p), q in zip(
        plain.named_parameters(), cp.parameters()) if p.requires_grad]
    assert grads and all(g is not None for _, g, _ in grads)
    for name, a, b in grads:
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4, msg=name)
    # Running statistics are not counted twice by the recomputation.
    for (name, a), b in zip(plain.named_buffers(), cp.buffers()):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=0, msg=name)
    # Activations of every trainable block are dropped, also the first one
    # after the frozen part whose input has no grad (mmdet keeps those).
    assert bytes_cp < 0.3 * bytes_plain


def test_with_cp_checkpoints_the_block_after_a_frozen_stem():
    kw = dict(depth=50, stem_channels=64, frozen_stages=1, norm_eval=False)
    x = torch.randn(2, 3, 64, 64)
    ours = ResNeSt(with_cp=True, **kw).train()
    theirs = MMDetResNeSt(with_cp=True, **kw)
    theirs.load_state_dict(ours.state_dict())
    theirs.train()
    # layer2.0 gets an input without grad: ours checkpoints it, mmdet doesn't.
    _, ours_bytes = _saved_bytes(lambda: ours.layer2[0](ours.layer1(
        ours.maxpool(ours.stem(x)))))
    _, theirs_bytes = _saved_bytes(lambda: theirs.layer2[0](theirs.layer1(
        theirs.maxpool(theirs.stem(x)))))
    assert ours_bytes < 0.2 * theirs_bytes


def test_zero_init_residual_zeroes_every_last_norm():
    model = ResNeSt(depth=50, zero_init_residual=True)
    model.init_weights()
    blocks = [m for m in model.modules() if isinstance(m, ResNeStBottleneck)]
    assert len(blocks) == 16
    assert all(not b.norm3.weight.any() for b in blocks)
    # mmdet's ResNeSt leaves them at one although it claims to zero them.
    peer = MMDetResNeSt(depth=50, zero_init_residual=True)
    peer.init_weights()
    assert peer.layer1[0].norm3.weight.eq(1).all()

    untouched = ResNeSt(depth=50, zero_init_residual=False)
    untouched.init_weights()
    assert untouched.layer1[0].norm3.weight.eq(1).all()


def test_dcn_fallback_on_stride_uses_plain_conv_where_strided():
    dcn = dict(type='DCN', deform_groups=1, fallback_on_stride=True)
    original = copy.deepcopy(dcn)
    model = ResNeSt(depth=50, avg_down_stride=False, dcn=dcn,
                    stage_with_dcn=(False, True, True, True))
    assert dcn == original  # the shared config is not consumed
    for stage in (model.layer2, model.layer3, model.layer4):
        first, *rest = [b.conv2.conv for b in stage]
        assert type(first) is nn.Conv2d and first.stride == (2, 2)
        assert all(isinstance(c, DeformConv2dPack) for c in rest)
    # Without the fallback every block of those stages is deformable ...
    model = ResNeSt(depth=50, avg_down_stride=False,
                    dcn=dict(type='DCN', deform_groups=1),
                    stage_with_dcn=(False, True, True, True))
    assert all(isinstance(b.conv2.conv, DeformConv2dPack)
               for b in model.layer2)
    # ... and with avd the 3x3 conv is never strided, so nothing falls back.
    model = ResNeSt(depth=50, dcn=dcn, stage_with_dcn=(False, True, True, True))
    assert all(isinstance(b.conv2.conv, DeformConv2dPack)
               for b in model.layer2)
    out = model.eval()(torch.randn(1, 3, 128, 128))
    assert out[-1].shape == (1, 2048, 4, 4)


def test_plugins_get_the_bottleneck_width_when_groups_gt_1():
    plugins = [
        dict(cfg=dict(type='ContextBlock', ratio=1. / 4), position=p)
        for p in ('after_conv1', 'after_conv2')
    ]
    model = ResNeSt(depth=50, radix=1, groups=4, base_width=24,
                    plugins=[dict(p, cfg=dict(p['cfg'], postfix=str(i)))
                             for i, p in enumerate(plugins)])
    block = model.layer1[0]
    assert block.width == bottleneck_width(64, 4, 24) == 96
    assert block.context_block0.in_channels == 96
    assert block.context_block1.in_channels == 96
    assert model.eval()(torch.randn(1, 3, 64, 64))[0].shape == (1, 256, 16, 16)
    # mmdet builds these plugins for 64 channels and fails at run time.
    peer = MMDetResNeSt(depth=50, radix=1, groups=4, base_width=24,
                        plugins=[dict(p, cfg=dict(p['cfg'], postfix=str(i)))
                                 for i, p in enumerate(plugins)])
    peer.eval()
    with pytest.raises(RuntimeError):
        peer(torch.randn(1, 3, 64, 64))


def test_avd_first_pools_before_the_split_attention_conv():
    model = ResNeSt(arch='resnest50_fast_2s2x40d').eval()
    block = model.layer2[0]
    assert block.avd_first and block.avg_down_stride
    x = torch.randn(1, 256, 16, 16)
    seen = []
    block.conv2.register_forward_pre_hook(lambda m, a: seen.append(a[0].shape))
    assert block(x).shape == (1, 512, 8, 8)
    assert seen == [(1, block.width, 8, 8)]
