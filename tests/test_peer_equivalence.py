"""Our ResNeSt *is* mmdet's and mmseg's ResNeSt: same state dict, same outputs.

For every architecture the peers can express we load one random state dict
into both (``strict=True``, both directions) and compare the feature maps in
eval mode and in train mode, plus the BatchNorm statistics a train step leaves.
"""
import pytest
import torch
from torch import nn
from mmdet.models.backbones.resnest import ResNeSt as MMDetResNeSt
from mmseg.models.backbones.resnest import ResNeSt as MMSegResNeSt

from conftest import max_abs_diff, randomize_, sgd_step
from resnest_mm.models import ResNeSt

TOL = 1e-5
S50 = dict(depth=50, stem_channels=64)

# (id, kwargs shared by ours and the peer, input size)
COMMON_CASES = [
    ('s50', S50, 64),
    ('s101', dict(depth=101, stem_channels=128), 64),
    ('s152', dict(depth=152, stem_channels=128), 32),
    ('s200', dict(depth=200, stem_channels=128), 32),
    ('radix4_groups2_w40', dict(S50, radix=4, groups=2, base_width=40), 64),
    ('radix1_groups4_w24', dict(S50, radix=1, groups=4, base_width=24), 64),
    ('radix1_groups1', dict(S50, radix=1), 64),
    ('no_avd', dict(S50, avg_down_stride=False), 64),
    ('reduction8', dict(S50, reduction_factor=8), 64),
    ('caffe_style', dict(S50, style='caffe'), 64),
    ('three_stages', dict(S50, num_stages=3, strides=(1, 2, 2),
                          dilations=(1, 1, 1), out_indices=(0, 1, 2)), 64),
    ('out_indices_1_3', dict(S50, out_indices=(1, 3)), 64),
    ('dilated_os8', dict(S50, strides=(1, 2, 1, 1), dilations=(1, 1, 2, 4)),
     64),
    ('group_norm', dict(S50, norm_cfg=dict(type='GN', num_groups=16)), 64),
    ('frozen_stages_2', dict(S50, frozen_stages=2), 64),
    ('context_block', dict(S50, plugins=[
        dict(cfg=dict(type='ContextBlock', ratio=1. / 4),
             stages=(False, True, True, True), position='after_conv3')
    ]), 64),
    ('dcn', dict(S50, dcn=dict(type='DCN', deform_groups=1),
                 stage_with_dcn=(False, True, True, True)), 128),
    ('wide_base', dict(S50, base_channels=32, stem_channels=32), 64),
]
SEG_ONLY_CASES = [
    ('contract_dilation_os8', dict(S50, strides=(1, 2, 1, 1),
                                   dilations=(1, 1, 2, 4),
                                   contract_dilation=True), 64),
    ('contract_dilation_os16', dict(S50, strides=(1, 2, 2, 1),
                                    dilations=(1, 1, 1, 2),
                                    contract_dilation=True), 64),
    ('multi_grid', dict(S50, strides=(1, 2, 1, 1), dilations=(1, 1, 2, 4),
                        contract_dilation=True, multi_grid=(1, 2, 4)), 64),
]
PEERS = {'mmdet': MMDetResNeSt, 'mmseg': MMSegResNeSt}
CASES = [pytest.param(peer, kw, size, id=f'{peer}-{name}')
         for peer in PEERS for name, kw, size in COMMON_CASES] + [
             pytest.param('mmseg', kw, size, id=f'mmseg-{name}')
             for name, kw, size in SEG_ONLY_CASES]


@pytest.mark.parametrize('peer,kwargs,size', CASES)
def test_same_state_dict_and_outputs(peer, kwargs, size):
    kwargs = dict(kwargs, norm_eval=False)
    theirs = PEERS[peer](**kwargs)
    ours = ResNeSt(**kwargs)
    ours_sd, theirs_sd = ours.state_dict(), theirs.state_dict()
    assert sorted(ours_sd) == sorted(theirs_sd)
    assert all(ours_sd[k].shape == theirs_sd[k].shape for k in ours_sd)
    # strict load in both directions, each with fresh random values
    ours.load_state_dict(randomize_(theirs, seed=1).state_dict(), strict=True)
    assert all(torch.equal(ours.state_dict()[k], v)
               for k, v in theirs.state_dict().items())
    theirs.load_state_dict(randomize_(ours).state_dict(), strict=True)
    x = torch.randn(2, 3, size, size)

    ours.eval(), theirs.eval()
    with torch.no_grad():
        eval_ours, eval_theirs = ours(x), theirs(x)
    assert len(eval_ours) == len(eval_theirs) == len(ours.out_indices)
    assert [o.shape for o in eval_ours] == [t.shape for t in eval_theirs]
    assert max_abs_diff(eval_ours, eval_theirs) <= TOL

    ours.train(), theirs.train()
    ours_sd = ours.state_dict()
    stats = [k for k in ours_sd if k.endswith(('running_mean', 'running_var'))]
    before = [ours_sd[k].clone() for k in stats]
    train_ours, train_theirs = ours(x), theirs(x)
    assert max_abs_diff(train_ours, train_theirs) <= TOL
    if stats:  # BatchNorm: the same statistics were left behind, and moved
        ours_sd, theirs_sd = ours.state_dict(), theirs.state_dict()
        after = [ours_sd[k] for k in stats]
        assert max_abs_diff(after, [theirs_sd[k] for k in stats]) <= TOL
        assert max_abs_diff(after, before) > 0


@pytest.mark.parametrize('frozen_stages', [-1, 1])
@pytest.mark.parametrize('peer', PEERS)
def test_norm_eval_true_trains_like_the_peer(peer, frozen_stages):
    """``norm_eval=True`` (mmdet's default): in train mode every BatchNorm
    normalises with its running statistics and leaves them alone, frozen
    stages get no gradient, and a training step changes the same weights."""
    kwargs = dict(S50, norm_eval=True, frozen_stages=frozen_stages)
    theirs = randomize_(PEERS[peer](**kwargs), seed=2)
    ours = ResNeSt(**kwargs)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    ours.train(), theirs.train()
    assert [(n, m.training) for n, m in ours.named_modules()
            if isinstance(m, nn.modules.batchnorm._BatchNorm)] == [
        (n, m.training) for n, m in theirs.named_modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    assert [(n, p.requires_grad) for n, p in ours.named_parameters()] == [
        (n, p.requires_grad) for n, p in theirs.named_parameters()]
    before = {k: v.clone() for k, v in theirs.state_dict().items()}
    x = torch.randn(2, 3, 64, 64)
    assert max_abs_diff(sgd_step(ours, x), sgd_step(theirs, x)) <= TOL
    ours_sd, theirs_sd = ours.state_dict(), theirs.state_dict()
    assert max_abs_diff([ours_sd[k] for k in theirs_sd],
                        list(theirs_sd.values())) <= TOL
    for k, v in theirs_sd.items():
        frozen = k.startswith(('stem.', 'layer1.')[:frozen_stages + 1])
        if k.endswith(('running_mean', 'running_var')) or frozen:
            assert torch.equal(v, before[k]), k
    assert not torch.equal(theirs_sd['layer4.2.conv3.weight'],
                           before['layer4.2.conv3.weight'])
