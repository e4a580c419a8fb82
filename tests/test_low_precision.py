"""The deploy backbone in bf16 and int8 (resnest_mm.deployment.low_precision)
and the test-time hook that swaps it into a detector.

Features are compared on scikit-image's photographs; int8 is calibrated on
other photographs than it is checked on. The trained models' mAP and mIoU in
bf16 and int8 are checked in test_det_end_to_end.py and
test_seg_end_to_end.py.
"""
import os

import onnx
import pytest
import torch
from conftest import randomize_
from mmdet.models.backbones import ResNet
from torch import nn

from resnest_mm.deployment.low_precision import (
    CALIBRATION_PHOTOS, CHECK_PHOTOS, Bf16Backbone, OrtBackbone,
    avd_pools_as_convs, cpu_features, deploy_copy, describe_cpu,
    level_cosines, low_precision_backbone, native_support, ort_session,
    photo_batches, slow_precision_notes, slow_precision_warning)
from resnest_mm.engine.backbone_precision import (BackbonePrecisionHook,
                                                  owner_of_backbone)
from resnest_mm.models import ResNeSt

#: The issue's bound on every level's cosine similarity to fp32.
MIN_COSINE = 0.99
SIZE = 224


@pytest.fixture(scope='module')
def resnest50():
    """ResNeSt-50 with random, well-scaled weights and BN statistics."""
    torch.manual_seed(0)
    return randomize_(ResNeSt(arch='resnest50d')).eval()


@pytest.fixture(scope='module')
def photos():
    return photo_batches(CHECK_PHOTOS, SIZE)


@pytest.fixture(scope='module')
def fp32_features(resnest50, photos):
    with torch.no_grad():
        return [resnest50(p) for p in photos]


def _min_cosines(model, photos, want):
    with torch.no_grad():
        got = [model(p) for p in photos]
    for g, w in zip(got, want):
        assert [o.shape for o in g] == [o.shape for o in w]
        assert all(o.dtype == torch.float32 for o in g)
    cosines = [level_cosines(w, g) for w, g in zip(want, got)]
    largest = max((a - b).abs().max().item()
                  for g, w in zip(got, want) for a, b in zip(g, w))
    return [min(c[i] for c in cosines) for i in range(4)], largest


def test_photo_batches_are_normalised_photographs():
    batches = photo_batches(CHECK_PHOTOS[:2], 96)
    assert [b.shape for b in batches] == [(1, 3, 96, 96)] * 2
    # ImageNet-normalised natural images: centred near 0, unit-ish spread
    for b in batches:
        assert -1.5 < b.mean().item() < 1.5
        assert 0.3 < b.std().item() < 2.0
    assert not torch.equal(batches[0], batches[1])
    # the default is mmdet's and mmseg's ImageNet preprocessing (0-255)
    mmdet_values = photo_batches(CHECK_PHOTOS[:1], 96,
                                 (123.675, 116.28, 103.53),
                                 (58.395, 57.12, 57.375))
    torch.testing.assert_close(batches[0], mmdet_values[0])


def test_bf16_features_on_photographs(resnest50, photos, fp32_features):
    model = low_precision_backbone(resnest50, 'bf16', 'unused')
    assert isinstance(model, Bf16Backbone)
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    cosines, largest = _min_cosines(model, photos, fp32_features)
    print(f'bf16 min cosine per level: {cosines}, max abs diff {largest:.3g}')
    assert min(cosines) >= MIN_COSINE
    # bf16 keeps 8 mantissa bits: a run that silently stayed in fp32
    # (differences ~1e-5) is not what this checks
    assert largest > 1e-3
    assert not resnest50.deploy  # the trained model is left as it was


@pytest.fixture(scope='module')
def int8_model(resnest50, tmp_path_factory):
    """ResNeSt-50 quantized, calibrated on other photos than it is checked
    on."""
    return low_precision_backbone(
        resnest50, 'int8', str(tmp_path_factory.mktemp('int8')),
        photo_batches(CALIBRATION_PHOTOS, SIZE))


def test_int8_features_on_photographs(resnest50, int8_model, photos,
                                      fp32_features):
    assert isinstance(int8_model, OrtBackbone)
    graph = onnx.load(int8_model.path).graph
    assert {'QuantizeLinear', 'DequantizeLinear'} <= {
        n.op_type for n in graph.node}
    # every conv's 4-D weight is stored in int8 (the attention MLP's
    # Linear layers are 2-D), the avd pools' depthwise convs included
    deploy = deploy_copy(resnest50)
    avd_pools = [m.avd_layer for m in deploy.modules()
                 if isinstance(getattr(m, 'avd_layer', None), nn.AvgPool2d)]
    assert len(avd_pools) == 3
    assert len(_int8_conv_weights(graph)) == len(avd_pools) + sum(
        isinstance(m, nn.Conv2d) for m in deploy.modules())
    # the only pools left: the three strided shortcuts' 2x2 (no 3x3 avd
    # pool, no 1x1 pool of the unstrided first stage)
    assert [list(a.ints) for n in graph.node if n.op_type == 'AveragePool'
            for a in n.attribute if a.name == 'kernel_shape'] == [[2, 2]] * 3
    cosines, largest = _min_cosines(int8_model, photos, fp32_features)
    print(f'int8 min cosine per level: {cosines}, max abs diff {largest:.3g}')
    assert min(cosines) >= MIN_COSINE
    assert largest > 1e-3


@pytest.mark.parametrize('avd_first', [False, True])
def test_avd_pools_as_convs_compute_the_same(avd_first):
    torch.manual_seed(0)
    model = deploy_copy(randomize_(ResNeSt(arch='resnest14d',
                                           avd_first=avd_first)))
    x = torch.randn(2, 3, 96, 80)
    convs = avd_pools_as_convs(model)
    assert not any(isinstance(m, nn.AvgPool2d) and m.kernel_size == 3
                   for m in convs.modules())
    with torch.no_grad():
        for got, want in zip(convs(x), model(x)):
            torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    model.layer2[0].avd_layer = nn.AvgPool2d(3, 2, padding=1,
                                             count_include_pad=False)
    with pytest.raises(ValueError, match='not a zero-padded 3x3 average'):
        avd_pools_as_convs(model)


def _int8_conv_weights(graph):
    return [onnx.numpy_helper.to_array(t) for t in graph.initializer
            if t.data_type == onnx.TensorProto.INT8 and len(t.dims) == 4]


def test_int8_weights_use_seven_bits(int8_model):
    """Weights in [-64, 64]: no sum of two u8 x s8 products (at most
    2 * 255 * 64 = 32640) saturates AVX2's int16."""
    weights = _int8_conv_weights(onnx.load(int8_model.path).graph)
    assert max(int(abs(w.astype(int)).max()) for w in weights) == 64
    assert os.path.isfile(int8_model.path.replace('.onnx', '_fp32.onnx'))


def test_fp32_is_the_deploy_model(resnest50, photos, fp32_features):
    model = low_precision_backbone(resnest50, 'fp32', 'unused')
    assert model.deploy and not resnest50.deploy
    cosines, largest = _min_cosines(model, photos[:1], fp32_features[:1])
    assert largest < 1e-3


@pytest.mark.parametrize('deployed_first', [False, True])
def test_deploy_copy_in_nhwc(resnest50, photos, fp32_features,
                             deployed_first):
    source = deploy_copy(resnest50) if deployed_first else resnest50
    model = deploy_copy(source, channels_last=True)
    assert model.deploy and model.channels_last and not resnest50.deploy
    convs = [m.weight for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert all(w.is_contiguous(memory_format=torch.channels_last)
               for w in convs if w.shape[-1] > 1)
    with torch.no_grad():
        got = model(photos[0])
    for g, w in zip(got, fp32_features[0]):
        torch.testing.assert_close(g, w, atol=1e-3, rtol=1e-3)
    back = deploy_copy(model)
    assert not back.channels_last and all(
        m.weight.is_contiguous() for m in back.modules()
        if isinstance(m, nn.Conv2d))


def test_onnxruntime_threads_do_not_spin(int8_model):
    options = ort_session(int8_model.path, threads=2).get_session_options()
    assert options.get_session_config_entry(
        'session.intra_op.allow_spinning') == '0'
    assert options.intra_op_num_threads == 2


def test_cpu_features_read_from_cpuinfo(tmp_path):
    info = tmp_path / 'cpuinfo'
    info.write_text('processor\t: 0\nmodel name\t: Test CPU 9000\n'
                    'flags\t\t: fpu sse avx2 avx512f avx512_vnni\n\n'
                    'processor\t: 1\nflags\t\t: fpu\n')
    features = cpu_features(str(info))
    assert features['model'] == 'Test CPU 9000'
    assert features['avx512_vnni'] and not features['avx512_bf16']
    assert native_support('int8', features)
    assert not native_support('bf16', features)
    missing = cpu_features(str(tmp_path / 'none'))
    assert missing['model'] == 'unknown'
    assert not native_support('int8', missing)


def test_tables_name_the_cpu_and_what_it_lacks(tmp_path):
    info = tmp_path / 'cpuinfo'
    info.write_text('model name\t: Test CPU 9000\n'
                    'flags\t\t: fpu avx2 avx512_vnni\n')
    described = describe_cpu(cpu_features(str(info)))
    assert described.startswith('Test CPU 9000 (torch kernels ')
    assert described.endswith('; avx512_vnni)')
    bare = describe_cpu(cpu_features(str(tmp_path / 'none')))
    assert bare.endswith('; no AVX512-BF16/VNNI/AMX)')
    vnni = cpu_features(str(info))
    assert slow_precision_warning('int8', vnni) is None
    assert slow_precision_warning('fp32', vnni) is None
    assert slow_precision_warning('bf16', vnni).startswith(
        'this CPU has none of avx512_bf16, amx_bf16: bf16 runs without them')
    bf16, int8 = slow_precision_notes(['bf16', 'int8'])
    assert bf16.startswith('This CPU has none of avx512_bf16, amx_bf16: bf16 ')
    assert int8.startswith('This CPU has none of avx512_vnni, avx_vnni, '
                           'amx_int8: int8 ')


def test_bad_precision_and_calibration_are_named(resnest50, tmp_path):
    with pytest.raises(ValueError, match=r"precision='fp16'.*'bf16', 'int8'"):
        low_precision_backbone(resnest50, 'fp16', str(tmp_path))
    with pytest.raises(ValueError, match='calibration images'):
        low_precision_backbone(resnest50, 'int8', str(tmp_path), [])
    with pytest.raises(ValueError, match='calib_images=0'):
        BackbonePrecisionHook('int8', calib_images=0)
    with pytest.raises(ValueError, match="precision='int4'"):
        BackbonePrecisionHook('int4')
    with pytest.raises(TypeError, match='not ResNet'):
        deploy_copy(ResNet(depth=18))


def test_hook_finds_the_backbone_and_refuses_others():
    class Detector(nn.Module):
        def __init__(self, backbone):
            super().__init__()
            self.backbone = backbone

    ours = Detector(ResNeSt(arch='resnest14d'))
    assert owner_of_backbone(ours) is ours
    wrapped = nn.Sequential(ours)  # e.g. a TTA model around the detector
    assert owner_of_backbone(wrapped) is ours
    with pytest.raises(ValueError, match='ResNet'):
        owner_of_backbone(Detector(ResNet(depth=18)))


def test_a_feature_map_has_cosine_one_with_itself():
    """Large non-negative maps (post-ReLU, as the backbone's): a float32 sum
    gives about 1 + 1e-5 here."""
    torch.manual_seed(0)
    levels = [torch.relu(torch.randn(2, 256, 56, 56)) * 3,
              torch.relu(torch.randn(2, 2048, 7, 7))]
    for cosine in level_cosines(levels, levels):
        assert abs(cosine - 1) < 1e-9
