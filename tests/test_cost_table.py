"""The cost table: the counter against a hand count, every variant rendered,
the README rewritten only between its markers, the speed path runs."""
import json
import subprocess
import sys

import pytest

from conftest import REPO
from resnest_mm.analysis.costs import (MARKERS, RESNETS, build_model, chart,
                                       cost_table, count_costs, markdown,
                                       model_names, replace_between_markers,
                                       variant_aliases)
from resnest_mm.models import ARCH_PRESETS, ResNeStBottleneck

TOOL = 'tools/analysis_tools/cost_table.py'


def test_counts_equal_a_hand_count_of_one_bottleneck():
    # 64 -> 64 channels, 8x8, planes 16, 2 groups of width 8, radix 2:
    # width w = 16, split conv 16 -> 2 x 16 in 4 groups, hidden 32.
    block = ResNeStBottleneck(64, 16, groups=2, base_width=32, radix=2)
    block.eval()
    hw, c_in, w, r, g, hidden, c_out = 8 * 8, 64, 16, 2, 2, 32, 64
    convs = (hw * c_in * w  # conv1 1x1
             + hw * r * w * (w // (g * r)) * 9  # split-attention 3x3
             + hidden * (w // g)  # fc1 on the pooled (1, w, 1, 1)
             + r * w * (hidden // g)  # fc2
             + hw * w * c_out)  # conv3 1x1
    # mmengine's conventions: eval BatchNorm 2 per element, adaptive
    # average pooling 1 per input element; softmax, mul, add, sum, ReLU 0.
    norms = 2 * (hw * w + hw * r * w + hidden + hw * c_out)
    pool = hw * w
    params = (c_in * w + w * (w // (g * r)) * r * 9 + (w // g) * hidden
              + hidden + (hidden // g) * r * w + r * w + w * c_out
              + 2 * (w + r * w + hidden + c_out))

    costs = count_costs(block, 8, in_channels=c_in)

    assert costs['flops_by_operator']['conv'] == convs
    assert costs['flops'] == convs + norms + pool
    assert costs['params'] == params
    # activations: the output elements of every conv
    assert costs['activations'] == hw * (w + r * w + c_out) + hidden + r * w


def test_params_are_every_parameter_element():
    model = build_model('resnest14d')
    assert count_costs(model, 32)['params'] == sum(
        p.numel() for p in model.parameters())


def test_markers_replace_only_what_is_between_them():
    start, end = MARKERS
    text = f'# Title\nbefore\n{start}\nold | table\n{end}\nafter\n'
    new = replace_between_markers(text, '| new |\n')
    assert new == f'# Title\nbefore\n{start}\n| new |\n{end}\nafter\n'
    for broken in ('no markers\n', f'{end}\nx\n{start}\n', f'{start}\nx\n'):
        with pytest.raises(ValueError, match='cost-table:start'):
            replace_between_markers(broken, '| new |')


def test_every_variant_and_both_resnets_have_a_row():
    aliases = variant_aliases()
    named = set(model_names()) | {a for names in aliases.values()
                                  for a in names}
    assert named == set(ARCH_PRESETS) | set(RESNETS)
    # one row per distinct architecture
    assert len(aliases) == len(set(ARCH_PRESETS.values()))


def test_tool_renders_the_table_into_the_readme(tmp_path):
    # A few rows: tracing resnest269e costs as much at 32 px as at 224.
    start, end = MARKERS
    readme = tmp_path / 'README.md'
    readme.write_text(f'intro\n{start}\nstale\n{end}\noutro\n')
    models = ['resnest14d', 'resnest26d', 'resnest50d', 'mmdet-resnet50']
    subprocess.run([
        sys.executable, TOOL, '--skip-speed', '--input-size', '32',
        '--models', *models, '--out-dir', str(tmp_path),
        '--update-readme', str(readme)
    ], cwd=REPO, check=True, capture_output=True)

    text = readme.read_text()
    assert text.startswith(f'intro\n{start}\n| model |')
    assert text.endswith(f'\n{end}\noutro\n')
    assert 'stale' not in text
    for name in models[:3] + ['resnest50', 'ResNet(depth=50)']:
        assert f'`{name}`' in text, name
    rows = json.loads((tmp_path / 'cost_table.json').read_text())['rows']
    assert list(rows) == models
    assert all(row['flops'] > 0 and row['activations'] > 0
               for row in rows.values())
    # a deeper ResNeSt costs more than a shallower one (at any size)
    assert (rows['resnest14d']['flops'] < rows['resnest26d']['flops']
            < rows['resnest50d']['flops'])


def test_tool_refuses_a_readme_without_markers(tmp_path):
    readme = tmp_path / 'README.md'
    readme.write_text('no table here\n')
    run = subprocess.run([
        sys.executable, TOOL, '--skip-speed', '--models', 'resnest14d',
        '--input-size', '32', '--out-dir', str(tmp_path), '--update-readme',
        str(readme)
    ], cwd=REPO, capture_output=True, text=True)
    assert run.returncode != 0
    assert MARKERS[0] in run.stderr and str(readme) in run.stderr
    assert readme.read_text() == 'no table here\n'
    assert not (tmp_path / 'cost_table.md').exists()


def test_speed_path_times_every_model_and_draws_the_chart(tmp_path):
    result = cost_table(['resnest14d', 'mmdet-resnet50'], 32, batch=1,
                        repeats=1, deploy=True)
    rows = result['rows']
    ours, ref = rows['resnest14d'], rows['mmdet-resnet50']
    assert ref['eval']['ratio_to_reference'] == 1
    assert ours['eval']['ratio_to_reference'] == pytest.approx(
        ours['eval']['images_per_s'] / ref['eval']['images_per_s'])
    assert ours['deploy_eval']['n'] == 1 and ref['deploy_eval'] is None
    header = markdown(result)[0]
    assert 'eval images/s' in header and 'deploy images/s' in header
    png = tmp_path / 'chart.png'
    chart(result, str(png))
    assert png.read_bytes()[:4] == b'\x89PNG'
    assert png.stat().st_size < 60_000
