"""The split-attention viewer: resnest_mm.visualization and
tools/analysis_tools/vis_split_attention.py."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from PIL import Image
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from conftest import load_tool
from resnest_mm.models import ResNeSt
from resnest_mm.models.split_attention import SplitAttentionConv2d
from resnest_mm.visualization import (SplitAttentionProbe, VIEW_FILES,
                                      block_summary, dominant_split,
                                      save_split_attention_views,
                                      split_contributions)
from resnest_mm.visualization.model_inputs import (build_config_model,
                                                   image_out_dirs)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOOL = os.path.join('tools', 'analysis_tools', 'vis_split_attention.py')
TOY_CONFIG = os.path.join(REPO, 'configs', 'toy',
                          'faster_rcnn_resnest14_fpn_toy.py')
BLOCKS = ['layer1.0', 'layer2.0', 'layer3.0', 'layer4.0']
#: Depth 26: two blocks per stage.
BLOCKS26 = ['layer1.0', 'layer1.1', 'layer2.0', 'layer2.1', 'layer3.0',
            'layer3.1', 'layer4.0', 'layer4.1']
#: Tiny backbones covering the cases the viewer must handle.
CASES = dict(
    radix2=dict(),
    radix4_groups2=dict(radix=4, groups=2),
    radix1=dict(radix=1),
    avd_first=dict(avd_first=True),
    dilated=dict(strides=(1, 2, 1, 1), dilations=(1, 1, 2, 4)),
    deploy=dict(deploy=True),
)


def tiny_backbone(deploy: bool = False, depth: int = 14,
                  **kwargs) -> ResNeSt:
    torch.manual_seed(0)
    backbone = ResNeSt(depth=depth, stem_channels=16, base_channels=8,
                       **kwargs).eval()
    for module in backbone.modules():  # non-trivial eval-mode norms
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.2, 0.2)
            module.running_var.uniform_(0.5, 1.5)
            nn.init.uniform_(module.weight, 0.5, 1.5)
            nn.init.uniform_(module.bias, -0.2, 0.2)
    if deploy:
        backbone.switch_to_deploy()
    return backbone


def layers(backbone: nn.Module) -> dict:
    return {name.rpartition('.')[0]: m for name, m in backbone.named_modules()
            if isinstance(m, SplitAttentionConv2d)}


def recompute(layer: SplitAttentionConv2d, x: torch.Tensor):
    """Radix weights (B, R, C) and splits (B, R, C, H, W) from the layer's
    own modules, written out here independently of the probe."""
    y = F.relu(layer.norm0(layer.conv(x)))
    batch, radix = y.shape[0], layer.radix
    splits = y.reshape(batch, radix, layer.channels, *y.shape[2:])
    context = splits.sum(1).mean((2, 3))  # (B, C)
    if isinstance(layer.fc1, nn.Linear):  # deploy mode
        hidden = F.relu(layer.norm1(layer.fc1(context)))
    else:
        hidden = F.relu(layer.norm1(layer.fc1(context[..., None, None])))
    logits = layer.fc2(hidden).reshape(batch, -1)  # group-major
    if radix == 1:
        return torch.sigmoid(logits)[:, None], splits
    weights = logits.view(batch, layer.groups, radix, -1).softmax(2)
    return weights.transpose(1, 2).reshape(batch, radix, -1), splits


def record(backbone: nn.Module, size: int = 64):
    """Probe records plus each layer's input and output, captured here."""
    seen = {}
    handles = [
        layer.register_forward_hook(
            lambda m, args, out, name=name: seen.__setitem__(
                name, (args[0].clone(), out.clone())))
        for name, layer in layers(backbone).items()
    ]
    torch.manual_seed(1)
    with torch.no_grad(), SplitAttentionProbe(backbone) as probe:
        backbone(torch.randn(2, 3, size, size))
    for handle in handles:
        handle.remove()
    return probe, seen


@pytest.mark.parametrize('case', list(CASES))
def test_records_equal_recomputation(case):
    backbone = tiny_backbone(**CASES[case])
    probe, seen = record(backbone)
    assert list(probe.records) == BLOCKS
    assert list(probe.stage_outputs) == ['layer1', 'layer2', 'layer3',
                                         'layer4']
    with torch.no_grad():
        for name, layer in layers(backbone).items():
            x, out = seen[name]
            weights, splits = recompute(layer, x)
            rec = probe.records[name]
            torch.testing.assert_close(rec.weights, weights, rtol=1e-4,
                                       atol=1e-5)
            torch.testing.assert_close(rec.splits, splits, rtol=1e-4,
                                       atol=1e-5)
            # the splits' contributions add up to the layer's output
            torch.testing.assert_close(
                split_contributions(rec).sum(1), out.sum(1), rtol=1e-4,
                atol=1e-4)


@pytest.mark.parametrize('radix,groups', [(2, 1), (4, 2)])
def test_split0_bias_gives_split0_everywhere(radix, groups):
    backbone = tiny_backbone(radix=radix, groups=groups)
    with torch.no_grad():
        for layer in layers(backbone).values():
            layer.fc2.weight.zero_()
            layer.fc2.bias.zero_()
            layer.fc2.bias.view(groups, radix, -1)[:, 0] = 30.0
            layer.norm0.bias.fill_(5.0)  # every split response positive
    probe, _ = record(backbone)
    for summary in block_summary(probe.records):
        assert summary['entropy'] < 1e-3, summary
        assert summary['split_mean_weights'][0] > 0.999, summary
    for rec in probe.records.values():
        dominant = dominant_split(split_contributions(rec))
        assert dominant.shape == rec.splits.shape[:1] + rec.splits.shape[3:]
        assert (dominant == 0).all(), rec.name


@pytest.mark.parametrize('radix', [1, 2, 4])
def test_zero_logits_give_entropy_one(radix):
    backbone = tiny_backbone(radix=radix)
    with torch.no_grad():
        for layer in layers(backbone).values():
            layer.fc2.weight.zero_()
            layer.fc2.bias.zero_()
    probe, _ = record(backbone)
    uniform = 0.5 if radix == 1 else 1 / radix
    for summary in block_summary(probe.records):
        assert summary['entropy'] == pytest.approx(1.0, abs=1e-5), summary
        assert summary['split_mean_weights'] == pytest.approx(
            [uniform] * radix, abs=1e-6)


@pytest.mark.parametrize('radix', [1, 2])
def test_three_to_one_weights_entropy(radix):
    # a gate of 0.75 (radix 1) or weights 0.75/0.25 (radix 2): both have a
    # binary entropy of 0.8113 bits
    backbone = tiny_backbone(radix=radix)
    with torch.no_grad():
        for layer in layers(backbone).values():
            layer.fc2.weight.zero_()
            layer.fc2.bias.zero_()
            layer.fc2.bias.view(radix, -1)[0] = np.log(3.0)
    probe, _ = record(backbone)
    expected = -(0.75 * np.log2(0.75) + 0.25 * np.log2(0.25))
    for summary in block_summary(probe.records):
        assert summary['entropy'] == pytest.approx(expected, abs=1e-5)
        assert summary['split_mean_weights'][0] == pytest.approx(0.75,
                                                                 abs=1e-6)


def probe_pass(backbone: nn.Module, *inputs: torch.Tensor):
    """A probe over one forward pass per input, in order."""
    with torch.no_grad(), SplitAttentionProbe(backbone) as probe:
        for x in inputs:
            backbone(x)
    return probe


def test_records_hold_the_last_forward_pass():
    # a batch of 2, then of 1: no tensor of the first pass can pass for
    # the second's, however alike the deep blocks' responses are
    backbone = tiny_backbone(depth=26)
    first, second = torch.randn(2, 3, 64, 64), torch.randn(1, 3, 64, 64)
    probe = probe_pass(backbone, first, second)
    alone = probe_pass(backbone, second)
    assert list(probe.records) == BLOCKS26
    for name, rec in probe.records.items():
        expected = alone.records[name]
        torch.testing.assert_close(rec.weights, expected.weights, rtol=1e-4,
                                   atol=1e-5)
        torch.testing.assert_close(rec.splits, expected.splits, rtol=1e-4,
                                   atol=1e-5)
    assert list(probe.stage_outputs) == ['layer1', 'layer2', 'layer3',
                                         'layer4']
    for name, out in probe.stage_outputs.items():
        torch.testing.assert_close(out, alone.stage_outputs[name], rtol=1e-4,
                                   atol=1e-5)


def check_png(path: str, width: int, height: int) -> None:
    with Image.open(path) as image:
        image.load()
        assert image.size == (width, height), path


@pytest.mark.parametrize('case', ['radix1', 'radix4_groups2', 'avd_first',
                                  'dilated', 'deploy'])
def test_views_are_drawn(case, tmp_path):
    backbone = tiny_backbone(**CASES[case])
    radix = backbone.radix
    picture = np.random.default_rng(0).integers(0, 255, (64, 64, 3),
                                                dtype=np.uint8)
    paths = save_split_attention_views(
        backbone, torch.randn(1, 3, 64, 64), picture, str(tmp_path), dpi=50)
    assert sorted(os.listdir(tmp_path)) == sorted(VIEW_FILES.values())
    # figure inches * dpi: 1.2 in per map (square input), 4 stages
    check_png(paths['split_maps'], round(1.2 * (1 + radix) * 50),
              round((1.2 * 4 + 0.3) * 50))
    check_png(paths['stage_outputs'], round(1.2 * 4 * 50),
              round((1.2 + 0.3) * 50))
    check_png(paths['profile'], 200, 210)
    with open(paths['numbers']) as f:
        blocks = json.load(f)['blocks']
    assert [b['name'] for b in blocks] == BLOCKS
    assert all(len(b['split_mean_weights']) == radix for b in blocks)
    assert all(0 <= b['entropy'] <= 1 for b in blocks)


def capture_figures(monkeypatch) -> dict:
    """PNG path -> the ``Figure`` saved there, for the drawn data."""
    figures = {}
    savefig = Figure.savefig

    def capture(fig: Figure, path: str, **kwargs) -> None:
        figures[path] = fig
        savefig(fig, path, **kwargs)

    monkeypatch.setattr(Figure, 'savefig', capture)
    return figures


@pytest.mark.parametrize('case', ['radix2', 'radix4_groups2'])
def test_split_maps_draw_each_split_of_the_last_blocks(case, tmp_path,
                                                       monkeypatch):
    # two blocks per stage: the maps are the second block's, one split a
    # column, compared with splits and weights recomputed here
    backbone = tiny_backbone(depth=26, **CASES[case])
    figures = capture_figures(monkeypatch)
    seen = {}
    handles = [
        layer.register_forward_hook(
            lambda m, args, out, name=name: seen.__setitem__(name, args[0]))
        for name, layer in layers(backbone).items()
    ]
    picture = np.zeros((64, 64, 3), dtype=np.uint8)
    paths = save_split_attention_views(
        backbone, torch.randn(1, 3, 64, 64), picture, str(tmp_path), dpi=50)
    for handle in handles:
        handle.remove()
    with open(paths['numbers']) as f:
        assert [b['name'] for b in json.load(f)['blocks']] == BLOCKS26
    last = ['layer1.1', 'layer2.1', 'layer3.1', 'layer4.1']
    rows = np.array(figures[paths['split_maps']].axes).reshape(
        len(last), 1 + backbone.radix)
    assert [row[0].get_title() for row in rows] == [
        f'{name} dominant' for name in last]
    for row, name in zip(rows, last):
        with torch.no_grad():
            weights, splits = recompute(layers(backbone)[name], seen[name])
        expected = (weights[..., None, None] * splits).sum(2)[0].numpy()
        peak = expected.max()
        # splits 0 and 1 differ well beyond the tolerance below
        assert np.abs(expected[1] - expected[0]).max() > 1e-2 * peak, name
        for r, ax in enumerate(row[1:]):
            drawn = np.asarray(ax.get_images()[1].get_array())
            np.testing.assert_allclose(drawn, expected[r], rtol=1e-4,
                                       atol=1e-4 * peak,
                                       err_msg=f'{name} split {r}')


def test_missing_config_and_checkpoint_are_named(tmp_path):
    with pytest.raises(FileNotFoundError,
                       match="config file '.*nowhere.py' does not exist"):
        build_config_model(str(tmp_path / 'nowhere.py'))
    with pytest.raises(FileNotFoundError, match='checkpoint=.*none.pth'):
        build_config_model(TOY_CONFIG, checkpoint=str(tmp_path / 'none.pth'))


def run_tool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, TOOL, *args], cwd=REPO,
                          capture_output=True, text=True, timeout=600)


def test_cli_on_toy_config_and_arch(tmp_path, monkeypatch):
    # in-process, to see the backbone and picture the tool hands to the
    # drawing code
    tool = load_tool('analysis_tools/vis_split_attention.py')
    drawn = []

    def capture(backbone, batch, picture, out_dir, **kwargs):
        drawn.append((backbone, picture))
        return save_split_attention_views(backbone, batch, picture, out_dir,
                                          **kwargs)

    monkeypatch.setattr(tool, 'save_split_attention_views', capture)
    image = tmp_path / 'shapes.png'
    Image.fromarray(np.random.default_rng(0).integers(
        0, 255, (96, 128, 3), dtype=np.uint8)).save(image)
    # 128 x 96: the toy pipeline's Resize (128, 128) and padding to 32, and
    # --size 128, leave it as it is
    with Image.open(image) as f:
        rgb = np.array(f.convert('RGB'))
    assert (rgb[..., 0] != rgb[..., 2]).mean() > 0.9  # a BGR copy differs
    out = tmp_path / 'toy'
    tool.main(['--config', TOY_CONFIG, str(image), '--out-dir', str(out),
               '--device', 'cpu', '--cfg-options', 'model.backbone.radix=4'])
    with open(out / 'shapes' / VIEW_FILES['numbers']) as f:
        blocks = json.load(f)['blocks']
    assert [b['radix'] for b in blocks] == [4] * 4  # --cfg-options applied
    out = tmp_path / 'arch'
    tool.main(['--arch', 'resnest14d', str(image), '--out-dir', str(out),
               '--size', '128', '--deploy'])
    assert sorted(os.listdir(out / 'shapes')) == sorted(VIEW_FILES.values())
    (config_backbone, config_picture), (arch_backbone, arch_picture) = drawn
    assert not config_backbone.deploy
    assert arch_backbone.deploy  # --deploy: switched, norms folded
    assert not any(isinstance(m, _BatchNorm) for m in arch_backbone.modules())
    np.testing.assert_array_equal(config_picture, rgb)
    np.testing.assert_array_equal(arch_picture, rgb)


def test_cli_names_a_missing_image(tmp_path):
    missing = str(tmp_path / 'no_such_image.jpg')
    result = run_tool('--arch', 'resnest14d', missing)
    assert result.returncode != 0
    assert f"image='{missing}': no such file" in result.stderr


def test_out_dirs_per_image_and_same_names_refused(tmp_path):
    assert image_out_dirs(['a/cat.jpg', 'b/dog.png'], 'out') == [
        os.path.join('out', 'cat'), os.path.join('out', 'dog')]
    with pytest.raises(ValueError, match="'a/cat.jpg' and 'b/cat.png' would "
                       "both write to 'out/cat'"):
        image_out_dirs(['a/cat.jpg', 'b/cat.png'], 'out')


def test_cli_refuses_two_images_of_one_name(tmp_path):
    images = []
    for folder in ('a', 'b'):
        (tmp_path / folder).mkdir()
        images.append(str(tmp_path / folder / 'shapes.png'))
        Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(images[-1])
    result = run_tool('--arch', 'resnest14d', *images, '--out-dir',
                      str(tmp_path / 'out'))
    assert result.returncode != 0
    assert f"images '{images[0]}' and '{images[1]}' would both write" in (
        result.stderr)
    assert not (tmp_path / 'out').exists()
