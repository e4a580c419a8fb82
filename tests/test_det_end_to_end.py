"""Toy detection end to end through the real tools: train, checkpoint,
evaluate (also through ONNX Runtime, with the backbone in bf16 and int8, and
the whole model shipped in int8),
interrupt and resume, two-process training, mmdet's own test, analyze_logs
and confusion_matrix tools on the run's log and predictions.

These are the slow tests of the suite (minutes): each runs the tools as a user
would, in a subprocess, on the generated toy COCO data.
"""
import json
import pickle
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import mmdet
import pytest
import torch
from mmdet.registry import MODELS
from mmengine.config import Config
from mmengine.registry import init_default_scope

from resnest_mm.deployment.low_precision import (CALIBRATION_PHOTOS,
                                                 CHECK_PHOTOS, level_cosines,
                                                 low_precision_backbone,
                                                 native_support, photo_batches)
from resnest_mm.deployment.deployed_model import DeployedModel
from resnest_mm.deployment.model_export import (build_model, export,
                                                pair_detections, preprocess,
                                                pytorch_outputs)
from resnest_mm.deployment.onnx_evaluation import evaluate_onnx
from resnest_mm.toy_data import make_toy_coco
from conftest import load_tool
from toy_runs import (REPO, TOY_FASTER, TRAIN_TIMEOUT_S, logged_metric,
                       read_image, run_tool, toy_data_options)

#: The toy config's schedule: CI trains exactly what the README's command does.
EPOCHS = 12
# COCO box mAP on the 40 val images after the 12 epochs (seed 0), measured on
# 2-core CPUs: 0.151 (mAP@50 0.358) in the README's run, 0.169 (0.385) in the
# test suite's; 0.123-0.132 (0.322) after 8 epochs; untrained 0.000-0.001.
# Another CPU's float rounding makes training drift (as these runs did): the
# margins allow a few hundredths.
MIN_TRAINED_MAP = 0.12
MIN_TRAINED_MAP_50 = 0.30
MAX_UNTRAINED_MAP = 0.02
TINY = {'train2017': 16, 'val2017': 4}
MMDET_TOOLS = Path(mmdet.__file__).parent / '.mim/tools'
export_tool = load_tool('deployment/export_model.py').main


def _untrained_checkpoint(path: Path) -> Path:
    init_default_scope('mmdet')
    model = MODELS.build(Config.fromfile(TOY_FASTER).model)
    model.init_weights()
    torch.save(dict(state_dict=model.state_dict()), path)
    return path


def assert_map_within_a_point(proc, fp32_proc, label: str) -> None:
    """Print box mAP and mAP@50 of a ``tools/test.py`` run beside fp32's;
    the box mAP must be within one point (0.01) of fp32's."""
    print()
    for key in ('coco/bbox_mAP', 'coco/bbox_mAP_50'):
        print(f'{key}: {label} {logged_metric(proc, key):.3f}, '
              f'fp32 {logged_metric(fp32_proc, key):.3f}')
    key = 'coco/bbox_mAP'
    assert abs(logged_metric(proc, key)
               - logged_metric(fp32_proc, key)) <= 0.01


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """Train the toy Faster R-CNN once, as the README's main command does;
    later tests evaluate its checkpoint."""
    root = tmp_path_factory.mktemp('toy_det')
    make_toy_coco(root / 'data/toy_coco')
    start = time.perf_counter()
    run_tool('train.py', [TOY_FASTER, '--work-dir', root / 'wd'], cwd=root,
             timeout=TRAIN_TIMEOUT_S)
    print(f'\ntoy Faster R-CNN, {EPOCHS} epochs: '
          f'{time.perf_counter() - start:.0f} s')
    return root, root / 'wd' / f'epoch_{EPOCHS}.pth'


@pytest.fixture(scope='module')
def tested(trained):
    """``tools/test.py`` on the trained checkpoint, one process, as the
    README's command (plus ``--out``); the tests compare other runs to it."""
    root, checkpoint = trained
    out = root / 'test/results.pkl'
    proc = run_tool('test.py', [TOY_FASTER, checkpoint, '--work-dir',
                                root / 'test', '--out', out], cwd=root)
    return proc, out


def test_trained_model_beats_untrained(trained, tested, tmp_path):
    root, _ = trained
    untrained = _untrained_checkpoint(tmp_path / 'untrained.pth')
    base = logged_metric(run_tool('test.py', [
        TOY_FASTER, untrained, '--work-dir', tmp_path / 'u'], cwd=root),
        'coco/bbox_mAP')
    proc, out = tested
    trained_map = logged_metric(proc, 'coco/bbox_mAP')
    trained_map_50 = logged_metric(proc, 'coco/bbox_mAP_50')
    print(f'bbox mAP: trained {trained_map:.3f} (mAP@50 {trained_map_50:.3f})'
          f', untrained {base:.3f}')
    assert base < MAX_UNTRAINED_MAP
    assert trained_map > MIN_TRAINED_MAP
    assert trained_map_50 > MIN_TRAINED_MAP_50
    assert out.stat().st_size > 0


def _run_mmdet_tool(tool, args, cwd):
    proc = subprocess.run([sys.executable, MMDET_TOOLS / tool, *args],
                          cwd=cwd, capture_output=True, text=True,
                          timeout=1200)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_mmdet_own_tools_run_our_config(trained, tested, tmp_path):
    """custom_imports in the config is all mmdet's train.py/test.py need."""
    root, checkpoint = trained
    ours = logged_metric(tested[0], 'coco/bbox_mAP')
    theirs = _run_mmdet_tool('test.py', [TOY_FASTER, checkpoint,
                                         '--work-dir', tmp_path / 'b'], root)
    assert logged_metric(theirs, 'coco/bbox_mAP') == ours
    make_toy_coco(tmp_path / 'data/toy_coco', TINY)
    _run_mmdet_tool('train.py', [
        TOY_FASTER, '--work-dir', tmp_path / 'c', '--cfg-options',
        'train_cfg.max_epochs=1', 'train_cfg.val_interval=1'], tmp_path)
    state = torch.load(tmp_path / 'c/epoch_1.pth', weights_only=True)
    assert 'backbone.layer4.0.conv2.fc2.weight' in state['state_dict']


def test_mmdet_analyze_logs_reads_the_training_log(trained, tmp_path):
    root, _ = trained
    log, = [p for p in (root / 'wd').glob('*/vis_data/*.json')
            if p.name != 'scalars.json']
    records = [json.loads(line) for line in log.read_text().splitlines()]
    train = [r for r in records if 'loss' in r]
    assert {r['epoch'] for r in train} == set(range(1, EPOCHS + 1))
    out = tmp_path / 'curves.png'
    proc = _run_mmdet_tool('analysis_tools/analyze_logs.py', [
        'plot_curve', log, '--keys', 'loss', 'bbox_mAP', '--out', out,
        '--backend', 'agg', '--eval-interval', str(EPOCHS)], tmp_path)
    assert 'metric is bbox_mAP' in proc.stdout
    assert read_image(out).shape[2] == 3
    # --include-outliers: the tool files each epoch's first line under the
    # epoch before, which leaves the last epoch one time to drop (NaN)
    proc = _run_mmdet_tool('analysis_tools/analyze_logs.py', [
        'cal_train_time', log, '--include-outliers'], tmp_path)
    printed = re.search(r'average iter time: ([0-9.]+) s/iter', proc.stdout)
    assert printed, proc.stdout
    times = [r['time'] for r in train]
    assert min(times) - 1e-4 <= float(printed[1]) <= max(times) + 1e-4


def test_mmdet_confusion_matrix_of_test_tool_results(trained, tested,
                                                     tmp_path):
    root, _ = trained
    _, results = tested
    with open(results, 'rb') as f:
        predictions = pickle.load(f)
    val = json.loads((root / 'data/toy_coco/annotations/'
                      'instances_val2017.json').read_text())
    assert len(predictions) == len(val['images'])
    _run_mmdet_tool('analysis_tools/confusion_matrix.py', [
        TOY_FASTER, results, tmp_path / 'cm', '--score-thr', '0.05'], root)
    # the tool sizes its figure by the classes it read: 0.5 in (90 px) per
    # label, the toy config's 3 classes + background (COCO's 80 would be
    # 7290 px wide)
    labels = len(val['categories']) + 1
    assert read_image(tmp_path / 'cm/confusion_matrix.png').shape == (
        labels * 72, labels * 90, 3)


def test_onnx_runtime_scores_as_pytorch(trained, tested, tmp_path,
                                        monkeypatch):
    """The whole trained detector exported to ONNX (standard ops) and run in
    onnxruntime on the val set: the box mAP of tools/test.py (the bound:
    half a point)."""
    root, checkpoint = trained
    model, scope = build_model(str(TOY_FASTER), str(checkpoint))
    path = str(tmp_path / 'faster_rcnn.onnx')
    export(model, scope, path, (128, 128))
    monkeypatch.chdir(root)  # the config's relative data_root
    metrics = evaluate_onnx(str(TOY_FASTER), path)
    for key in ('coco/bbox_mAP', 'coco/bbox_mAP_50'):
        assert abs(metrics[key] - logged_metric(tested[0], key)) <= 0.005


@pytest.fixture(scope='module')
def shipped_int8(trained):
    """The trained detector shipped by ``export_model.py --precision int8``
    (calibrated on 32 train images) and the tool's report."""
    root, checkpoint = trained
    out = root / 'shipped/faster_rcnn_int8.onnx'
    report = export_tool([str(TOY_FASTER), str(checkpoint), '--precision',
                          'int8', '--out', str(out), '--cfg-options',
                          *toy_data_options(root / 'data/toy_coco')])
    return out, report


def test_shipped_int8_detections_pair_with_fp32(trained, shipped_int8):
    """On 10 val images, the PyTorch fp32 model's detections scored 0.3 or
    more find int8 partners of the same label (IoU >= 0.5, scored 0.2 or
    more), and the other way round, one to one: a file without NMS fails
    (its duplicates find no partner). Measured on an AVX2 CPU over three
    calibrations: 81 of 85 and 80 to 83 of 84 to 90 paired, the largest
    score difference of a pair 0.04 to 0.12; bounds: 80% each way, 0.2."""
    root, checkpoint = trained
    model, scope = build_model(str(TOY_FASTER), str(checkpoint))
    deployed = DeployedModel(str(shipped_int8[0]))
    totals = dict(want_confident=0, want_paired=0, got_confident=0,
                  got_paired=0)
    worst = 0.0
    for path in sorted((root / 'data/toy_coco/val2017').glob('*.jpg'))[:10]:
        image = preprocess(model, read_image(path))
        report = pair_detections(deployed.outputs(image),
                                 pytorch_outputs(model, scope, image),
                                 min_score=0.3, score_margin=0.1)
        worst = max(worst, report['paired_max_score_diff'])
        for key in totals:
            totals[key] += report[key]
    print(f'\nint8 vs fp32 on 10 val images: {totals}, largest score '
          f'difference of a pair {worst:.3f}')
    assert totals['want_confident'] >= 20
    assert totals['want_paired'] >= 0.8 * totals['want_confident']
    assert totals['got_paired'] >= 0.8 * totals['got_confident']
    assert worst <= 0.2


def test_test_tool_scores_the_shipped_int8_file(trained, tested,
                                                shipped_int8, tmp_path):
    """``tools/test.py CONFIG model_int8.onnx``: the config's test loop and
    COCO evaluator on the file itself; box mAP within one point of fp32's
    (measured: int8 0.150 / mAP@50 0.328, fp32 0.146 / 0.324; 0.145 to
    0.150 over three calibrations)."""
    root, _ = trained
    proc = run_tool('test.py', [TOY_FASTER, shipped_int8[0], '--work-dir',
                                tmp_path / 'shipped'], cwd=root)
    assert_map_within_a_point(proc, tested[0], 'shipped int8')


@pytest.mark.parametrize('precision', ['bf16', 'int8'])
def test_low_precision_backbone_keeps_the_map(trained, tested, tmp_path,
                                              precision):
    """``tools/test.py --backbone-precision``: the box mAP with the backbone
    in bf16 or int8 (calibrated on 32 train images) is within one point of
    fp32's (measured: bf16 0.171, int8 0.167 vs fp32 0.169; mAP@50 bf16
    0.385, int8 0.374 vs 0.385, printed, not bounded by the issue)."""
    root, checkpoint = trained
    proc = run_tool('test.py', [TOY_FASTER, checkpoint, '--work-dir',
                                tmp_path / 'lp', '--backbone-precision',
                                precision], cwd=root)
    log = proc.stdout + proc.stderr
    assert f'backbone in {precision}' in log
    # a CPU without the precision's instructions gets a warning that the
    # speed here is no guide (the metrics still hold)
    assert (f'{precision} runs without them' in log) == (
        not native_support(precision))
    if precision == 'int8':
        assert (tmp_path / 'lp/backbone_int8.onnx').is_file()
    assert_map_within_a_point(proc, tested[0], precision)


def test_trained_backbone_low_precision_on_photographs(trained):
    """The trained backbone's features on scikit-image photographs, through
    the detector's own normalisation: every level's cosine similarity to
    fp32 at least 0.99 in bf16 and in int8 (calibrated on other photos;
    measured: bf16 0.9999, int8 0.9968-0.9981)."""
    _, checkpoint = trained
    model, _ = build_model(str(TOY_FASTER), str(checkpoint))
    norm = model.data_preprocessor
    mean, std = norm.mean.flatten().tolist(), norm.std.flatten().tolist()
    photos = photo_batches(CHECK_PHOTOS, 224, mean, std)
    calibration = photo_batches(CALIBRATION_PHOTOS, 224, mean, std)
    with torch.no_grad():
        want = [model.backbone(p) for p in photos]
        for precision in ('bf16', 'int8'):
            low = low_precision_backbone(model.backbone, precision,
                                         str(checkpoint.parent / 'lp'),
                                         calibration)
            cosines = [level_cosines(w, low(p))
                       for w, p in zip(want, photos)]
            worst = [min(c[i] for c in cosines) for i in range(len(want[0]))]
            print(f'\n{precision}: min cosine per level {worst}')
            assert min(worst) >= 0.99


def test_killed_run_resumes_from_its_checkpoint(tmp_path):
    make_toy_coco(tmp_path / 'data/toy_coco', TINY)
    work_dir = tmp_path / 'wd'
    options = ['--cfg-options', 'train_cfg.max_epochs=3',
               'train_cfg.val_interval=3',
               'default_hooks.checkpoint.interval=1']
    first = subprocess.Popen(
        [sys.executable, REPO / 'tools/train.py', TOY_FASTER, '--work-dir',
         work_dir, *options], cwd=tmp_path, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    deadline = time.time() + 900
    while not (work_dir / 'last_checkpoint').exists():
        assert first.poll() is None and time.time() < deadline
        time.sleep(0.2)
    first.send_signal(signal.SIGKILL)
    first.wait()
    saved = Path((work_dir / 'last_checkpoint').read_text().strip())
    epoch = int(saved.stem.split('_')[1])
    assert epoch < 3, 'the run finished before it could be interrupted'
    before = {p.name for p in work_dir.iterdir()}

    resumed = run_tool('train.py', [TOY_FASTER, '--work-dir', work_dir,
                                    '--resume', *options], cwd=tmp_path)
    assert f'resumed epoch: {epoch}, iter: {2 * epoch}' in resumed.stdout
    assert before <= {p.name for p in work_dir.iterdir()}  # nothing lost
    final = torch.load(work_dir / 'epoch_3.pth', weights_only=True)
    assert (final['meta']['epoch'], final['meta']['iter']) == (3, 6)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def test_two_process_training_and_testing(trained, tested, tmp_path):
    """torchrun with two CPU processes (gloo): each gets half the batches.
    Testing gathers both halves of the val set before COCO evaluation, so the
    trained checkpoint scores what one process gives it."""
    make_toy_coco(tmp_path / 'data/toy_coco', TINY)
    env = dict(PORT=str(_free_port()), OMP_NUM_THREADS='1')
    train = run_tool('dist_train.sh', [
        TOY_FASTER, 2, '--work-dir', tmp_path / 'wd', '--cfg-options',
        'train_cfg.max_epochs=1', 'train_cfg.val_interval=1'],
        cwd=tmp_path, env=env)
    assert 'Distributed training: True' in train.stdout
    # 16 images, batch 8 per process, 2 processes: one iteration per epoch
    assert 'Epoch(train) [1][1/1]' in train.stdout
    root, checkpoint = trained
    test = run_tool('dist_test.sh', [
        TOY_FASTER, checkpoint, 2, '--work-dir', tmp_path / 'test'],
        cwd=root, env=env)
    # 40 val images, batch 8: 5 batches in one process, 3 (8, 8, 4) in each
    assert 'Epoch(test) [3/3]' in test.stdout
    one_process = logged_metric(tested[0], 'coco/bbox_mAP')
    two_processes = logged_metric(test, 'coco/bbox_mAP')
    print(f'bbox mAP: one process {one_process:.3f}, two {two_processes:.3f}')
    # 1 thread per process here, 2 in the one-process run: other kernels may
    # round a few box scores differently and move the last digits
    assert two_processes == pytest.approx(one_process, abs=0.005)
