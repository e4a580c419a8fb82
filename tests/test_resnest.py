import pytest
import torch
from torch.nn.modules.batchnorm import _BatchNorm

from resnest_mm.models import ARCH_PRESETS, STAGE_BLOCKS, DropBlock2d, ResNeSt


@pytest.mark.parametrize('depth', sorted(STAGE_BLOCKS))
def test_every_depth_builds_its_stages_and_stem(depth):
    model = ResNeSt(depth=depth).eval()
    assert [len(getattr(model, f'layer{i}')) for i in range(1, 5)] == list(
        STAGE_BLOCKS[depth])
    assert model.stem_channels == (64 if depth <= 50 else 128)
    assert model.stem[6].out_channels == model.stem_channels
    with torch.no_grad():
        outs = model(torch.randn(1, 3, 64, 64))
    assert [o.shape[1] for o in outs] == list(model.out_channels) == [
        256, 512, 1024, 2048]
    assert [64 // o.shape[-1] for o in outs] == list(model.out_strides) == [
        4, 8, 16, 32]


def test_presets_match_the_official_variant_names():
    expected = {  # name: (depth, radix, groups, width of layer1's 3x3, avd_first)
        'resnest14d': (14, 2, 1, 64, False),
        'resnest101e': (101, 2, 1, 64, False),
        'resnest269e': (269, 2, 1, 64, False),
        'resnest50d_1s4x24d': (50, 1, 4, 96, True),
        'resnest50d_4s2x40d': (50, 4, 2, 80, True),
        'resnest50_fast_1s1x64d': (50, 1, 1, 64, True),
        'resnest50_fast_2s2x40d': (50, 2, 2, 80, True),
    }
    for name, (depth, radix, groups, width, avd_first) in expected.items():
        model = ResNeSt(arch=name)
        block = model.layer1[0]
        assert (model.depth, block.conv2.radix, block.conv2.groups,
                block.width, block.avd_first) == (depth, radix, groups, width,
                                                  avd_first), name
    assert len(ARCH_PRESETS) == 19


def test_explicit_arguments_override_the_preset():
    model = ResNeSt(arch='resnest50d', stem_channels=32, radix=4)
    assert model.stem_channels == 32 and model.layer1[0].conv2.radix == 4


def test_out_indices_and_metadata_follow_forward_order():
    model = ResNeSt(depth=14, out_indices=(3, 1)).eval()
    outs = model(torch.randn(1, 3, 64, 64))
    assert [o.shape[1] for o in outs] == list(model.out_channels) == [512, 2048]
    assert model.out_strides == (8, 32)


@pytest.mark.parametrize('strides,dilations,stride', [
    ((1, 2, 1, 1), (1, 1, 2, 4), 8),
    ((1, 2, 2, 1), (1, 1, 1, 2), 16),
])
def test_dilated_output_stride(strides, dilations, stride):
    model = ResNeSt(depth=50, strides=strides, dilations=dilations,
                    contract_dilation=True).eval()
    outs = model(torch.randn(1, 3, 64, 64))
    assert outs[-1].shape[-1] == 64 // stride == 64 // model.out_strides[-1]
    first, second = model.layer4[0].conv2.conv, model.layer4[1].conv2.conv
    assert second.dilation == (dilations[3], ) * 2
    assert first.dilation == (max(dilations[3] // 2, 1), ) * 2


def test_frozen_stages_and_norm_eval():
    model = ResNeSt(depth=14, frozen_stages=1, norm_eval=False).train()
    assert not any(p.requires_grad for p in model.stem.parameters())
    assert not any(p.requires_grad for p in model.layer1.parameters())
    assert all(p.requires_grad for p in model.layer2.parameters())
    assert not model.layer1.training and model.layer2.training
    model = ResNeSt(depth=14, norm_eval=True).train()
    assert all(not m.training for m in model.modules()
               if isinstance(m, _BatchNorm))


def test_drop_block_sits_where_the_official_code_puts_it():
    model = ResNeSt(depth=50, drop_block=dict(prob=0.2, block_size=3))
    for i in (1, 2):
        assert all(b.drop_block is None and b.conv2.drop_block is None
                   for b in getattr(model, f'layer{i}'))
    for i in (3, 4):
        assert all(isinstance(b.drop_block, DropBlock2d)
                   and isinstance(b.conv2.drop_block, DropBlock2d)
                   for b in getattr(model, f'layer{i}'))
    x = torch.randn(2, 3, 64, 64)
    model.eval()
    assert torch.equal(model(x)[-1], model(x)[-1])
    model.train()
    assert not torch.equal(model(x)[-1], model(x)[-1])


def test_train_with_one_image_per_batch():
    model = ResNeSt(depth=14, norm_eval=False).train()
    outs = model(torch.randn(1, 3, 64, 64))
    sum(o.mean() for o in outs).backward()
    assert model.stem[0].weight.grad is not None


def test_pretrained_becomes_init_cfg():
    with pytest.warns(UserWarning, match='deprecated'):
        model = ResNeSt(depth=14, pretrained='x.pth')
    assert model.init_cfg == dict(type='Pretrained', checkpoint='x.pth')
    with pytest.raises(ValueError, match='cannot both be set'):
        ResNeSt(depth=14, pretrained='x.pth',
                init_cfg=dict(type='Pretrained', checkpoint='y.pth'))


@pytest.mark.parametrize('kwargs,match', [
    (dict(depth=34), r'depth=34 is not a ResNeSt depth; choose one of \[14, '),
    (dict(), 'needs depth'),
    (dict(arch='resnest51'), "arch='resnest51' is not a known ResNeSt"),
    (dict(arch='resnest50d', depth=101), 'depth=101 contradicts'),
    (dict(depth=50, radix=0), 'radix=0 is invalid; it must be an integer >= 1'),
    (dict(depth=50, groups=0), 'groups=0 is invalid'),
    (dict(depth=50, out_indices=(0, 4)),
     r'out_indices=\(0, 4\) must be .* in \[0, 3\]'),
    (dict(depth=50, num_stages=3, strides=(1, 2, 2), dilations=(1, 1, 1),
          out_indices=(3, )), r'in \[0, 2\]'),
    (dict(depth=50, frozen_stages=5), r'frozen_stages=5 must be in \[-1, 4\]'),
    (dict(depth=50, frozen_stages=-2), r'frozen_stages=-2'),
    (dict(depth=50, strides=(1, 2, 2)),
     r'strides=\(1, 2, 2\) must be a tuple with one entry per stage'),
    (dict(depth=50, dilations=(1, 1, 2, 4, 8)), 'dilations='),
    (dict(depth=50, num_stages=5), 'num_stages=5 is invalid'),
    (dict(depth=50, groups=3, base_width=4),
     'groups=3, radix=2, base_width=4, reduction_factor=4 do not fit'),
    (dict(depth=50, groups=64, base_width=1, radix=1),
     r'attention width 32 a multiple of groups=64'),
    (dict(depth=50, stem_channels=33), 'stem_channels=33 must be even'),
    (dict(depth=50, style='tf'), "style='tf'"),
    (dict(depth=50, multi_grid=(1, 2)), r'multi_grid=\(1, 2\) needs one'),
    (dict(depth=50, dcn=dict(type='DCN'), stage_with_dcn=(True, )),
     'stage_with_dcn='),
    (dict(depth=50, drop_block=dict(prob=0.1)), 'drop_block='),
    (dict(depth=50, drop_block=dict(prob=0.1, block_size=2)), 'block_size=2'),
    (dict(depth=50, plugins=[dict(cfg=dict(type='ContextBlock'),
                                  position='after_conv4')]), 'after_conv4'),
])
def test_bad_arguments_raise_value_errors_that_name_them(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ResNeSt(**kwargs)
