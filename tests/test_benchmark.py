"""tools/analysis_tools/benchmark.py plumbing, with tiny settings (nothing
here is timed)."""
import json
import os

import pytest
import torch

from conftest import load_tool
from resnest_mm.benchmark.peers import openmmlab_kwargs
from resnest_mm.benchmark.timing import interleaved, summary

main = load_tool('analysis_tools/benchmark.py').main


def test_interleaved_rotates_the_order_and_counts_repeats():
    calls = []
    fns = {n: (lambda n=n: calls.append(n)) for n in 'abc'}
    times = interleaved(fns, torch.device('cpu'), warmup=1, repeats=3)
    assert calls == list('abc') + list('abc') + list('bca') + list('cab')
    assert all(len(t) == 3 for t in times.values())


def test_summary_reports_median_and_quartiles():
    stats = summary([4.0, 1.0, 2.0, 3.0, 5.0], images=2)
    assert (stats['median_s'], stats['q1_s'], stats['q3_s']) == (3, 2, 4)
    assert stats['images_per_s'] == pytest.approx(2 / 3)


def test_backbone_comparison_writes_json_and_markdown(tmp_path):
    result = main(['backbone', '--arch', 'resnest50d', '--input-size', '32',
                   '--warmup', '0', '--repeats', '1', '--threads', '1',
                   '--out-dir', str(tmp_path)])
    setting, = result['settings']
    assert set(setting['peers']) == {'ours', 'ours-deploy', 'mmdet', 'mmseg',
                                     'official', 'timm'}
    assert 'train' not in setting['peers']['ours-deploy']
    for name in ('ours', 'mmdet', 'mmseg', 'official', 'timm'):
        peer = setting['peers'][name]
        assert peer['eval']['images_per_s'] > 0
        assert peer['train']['images_per_s'] > 0
        assert peer['train_peak_mib'] > 0
        assert 0 < peer['eval_peak_mib'] < peer['train_peak_mib']
    # (At 32^2 every eval peak is the largest weight's oneDNN reorder, the
    # same for all within 16 KiB of 9.3 MiB, and without oneDNN deploy's is
    # above the others': what deploy saves is asserted per layer, in
    # tests/test_deploy.py and tests/test_split_attention.py.)
    assert 0 < setting['peers']['ours-deploy']['eval_peak_mib']
    # shared weights: the same features as mmdet and mmseg, deploy within 1e-4
    assert setting['peers']['mmdet']['eval']['max_abs_diff_vs_ours'] <= 1e-5
    assert setting['peers']['ours-deploy']['eval'][
        'max_abs_diff_vs_ours'] <= 1e-4
    names = [t['name'] for t in result['targets']]
    assert 'ours-deploy eval speed / mmdet eager eval' in names
    saved = json.loads((tmp_path / 'backbone.json').read_text())
    assert saved['config']['arch'] == 'resnest50d'
    table = (tmp_path / 'backbone.md').read_text()
    assert '| fp32 | off | ours-deploy |' in table and '| target |' in table


def test_peers_that_cannot_express_the_arch_are_skipped(tmp_path):
    result = main(['backbone', '--arch', 'resnest14d', '--input-size', '32',
                   '--warmup', '0', '--repeats', '1', '--modes', 'eval',
                   '--threads', '1', '--peers', 'ours', 'mmdet',
                   '--out-dir', str(tmp_path)])
    assert 'mmdet' in result['skipped']
    with pytest.raises(ValueError, match='avd_first'):
        openmmlab_kwargs('resnest50_fast_2s2x40d')


def test_cp_memory_reports_the_saving(tmp_path):
    """Plumbing: at 64^2 the saving is 6-8% and depends on the
    CPU's kernels (tests/test_with_cp_memory.py asserts it where it is
    robust); here the report must state it from the two peaks."""
    result = main(['cp-memory', '--arch', 'resnest14d', '--input-size', '64',
                   '--threads', '1', '--out-dir', str(tmp_path)])
    plain, with_cp = result['plain_peak_mib'], result['with_cp_peak_mib']
    assert plain > 0 and with_cp > 0
    saving, _ = result['targets']
    assert saving['name'] == 'with_cp peak memory saving'
    assert saving['value'] == pytest.approx(1 - with_cp / plain)
    assert result['grad_max_abs_diff'] <= 1e-4 * result['grad_max_abs']
    assert os.path.exists(tmp_path / 'cp-memory.md')


def test_e2e_faster_rcnn_train_steps(tmp_path):
    # few sampled RoIs: the box head's convs would dominate the CI time
    result = main(['e2e', '--image-size', '64', '--batch-size', '2',
                   '--warmup', '0', '--repeats', '1', '--threads', '1',
                   '--out-dir', str(tmp_path), '--cfg-options',
                   'model.train_cfg.rcnn.sampler.num=16'])
    assert set(result['models']) == {'ours', 'mmdet'}
    assert result['weights_not_shared'] == []  # same keys: same weights
    assert result['note'] is None  # our config exists
    assert all(m['iters_per_s'] > 0 and m['train_peak_mib'] > 0
               for m in result['models'].values())


def test_gpu_suite_quick_mode_runs_every_part_on_a_cpu(tmp_path):
    result = main(['gpu-suite', '--device', 'cpu', '--quick', '--threads',
                   '1', '--out-dir', str(tmp_path)])
    settings = {(s['precision'], s['channels_last']): s['peers']
                for s in result['backbone']['settings']}
    assert set(settings) == {(p, c) for p in ('fp32', 'amp', 'bf16')
                             for c in (False, True)}
    for peers in settings.values():
        assert all(peers[n]['eval']['images_per_s'] > 0
                   for n in ('ours', 'ours-deploy', 'mmdet'))
        assert all(peers[n]['train']['images_per_s'] > 0
                   for n in ('ours', 'mmdet'))
    assert set(result['e2e']['models']) == {'ours', 'mmdet'}
    names = {t['name']: t['target'] for t in result['targets']}
    assert names['Faster R-CNN S-50 train iter/s / mmdet stock config'] == 1.3
    assert names['with_cp peak memory saving'] == 0.4
    table = (tmp_path / 'gpu-suite.md').read_text()
    for part in ('## Backbone', '## Faster R-CNN S-50 training',
                 '## with_cp', '| target |'):
        assert part in table


def test_e2e_amp_needs_cuda(tmp_path):
    with pytest.raises(ValueError, match='--precision amp needs a CUDA'):
        main(['e2e', '--precision', 'amp', '--out-dir', str(tmp_path)])


def test_low_precision_compares_every_runtime_with_mmdet(tmp_path):
    """``low-precision`` at a toy size: every candidate timed against
    mmdet's fp32 eager model, features checked, the CPU recorded."""
    result = main(['low-precision', '--input-size', '64', '--batch-size',
                   '1', '--repeats', '2', '--warmup', '0', '--out-dir',
                   str(tmp_path)])
    peers = result['peers']
    assert set(peers) == {'mmdet', 'ours-deploy', 'ort-fp32', 'ort-int8',
                          'bf16'}
    assert all(p['eval']['n'] == 2 and p['eval']['median_s'] > 0
               for p in peers.values())
    # mmdet runs our state dict: the same features; the others are close
    assert min(peers['mmdet']['min_cosine_per_level']) > 0.9999
    for name in ('ours-deploy', 'ort-fp32', 'bf16', 'ort-int8'):
        assert min(peers[name]['min_cosine_per_level']) >= 0.99, name
    assert result['onnxruntime_spinning'] == 'off'
    assert 'torch_capability' in result['cpu']
    goals = {t['name']: t['target'] for t in result['targets']}
    assert goals['bf16 speed / mmdet fp32 eager'] == 3.0
    assert goals['ort-int8 speed / mmdet fp32 eager'] == 4.0
    table = (tmp_path / 'low-precision.md').read_text()
    assert '| ort-int8 |' in table and 'spin-waiting off' in table
    # a precision without its instructions on this CPU is said to be so
    cpu = result['cpu']
    assert ('none of avx512_bf16, amx_bf16' in table) == (
        not (cpu['avx512_bf16'] or cpu['amx_bf16']))
    assert ('none of avx512_vnni, avx_vnni, amx_int8' in table) == (
        not (cpu['avx512_vnni'] or cpu['avx_vnni'] or cpu['amx_int8']))


def test_low_precision_is_a_cpu_measurement(tmp_path):
    with pytest.raises(ValueError, match='--device cuda.*--device cpu'):
        main(['low-precision', '--device', 'cuda', '--out-dir',
              str(tmp_path)])


@pytest.mark.parametrize('stock', [False, True])
def test_e2e_detector_has_the_asked_for_backbone(stock):
    from mmdet.models.backbones.resnest import ResNeSt as MMDetResNeSt

    from resnest_mm.benchmark.e2e import build_detector, stock_config_path
    from resnest_mm.models import ResNeSt
    model = build_detector(stock_config_path(), stock_backbone=stock)
    assert type(model.backbone) is (MMDetResNeSt if stock else ResNeSt)
    assert model.training
