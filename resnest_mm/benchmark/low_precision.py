"""``benchmark low-precision``: the deploy backbone in fp32, bf16 and int8 on
the CPU, against mmdet's fp32 eager ResNeSt, in one process.

Candidates (:mod:`resnest_mm.deployment.low_precision`): ``ours-deploy``
(fp32, folded BN, NHWC), ``ort-fp32`` (the exported file in onnxruntime),
``bf16`` (weights and convs in bfloat16), ``ort-int8`` (static QDQ
quantization calibrated on scikit-image photographs) and, with
``--compile``, ``ours-deploy-compiled`` and ``bf16-compiled``
(``torch.compile``, frozen weights). All are timed interleaved
(:func:`resnest_mm.benchmark.timing.interleaved`) with onnxruntime's
spin-waiting off, so no runtime's idle threads slow the next one. Each
candidate's per-level cosine similarity to our fp32 eval model is measured on
four other photographs. The result records the CPU's instruction sets: bf16
is fast only with AVX512-BF16 or AMX, int8 gains most with VNNI.
"""
import argparse
import copy
import os
import tempfile
from typing import Dict, List

import torch
from torch import nn

from resnest_mm.benchmark.peers import build_peer, compiled_deploy
from resnest_mm.benchmark.timing import interleaved, summary, target
from resnest_mm.deployment.low_precision import (CALIBRATION_PHOTOS,
                                                 CHECK_PHOTOS, Bf16Backbone,
                                                 OrtBackbone, cpu_features,
                                                 deploy_copy, describe_cpu,
                                                 level_cosines,
                                                 native_support, photo_batches,
                                                 quantize_int8,
                                                 slow_precision_notes)
from resnest_mm.models import ResNeSt

#: The issue's goals, as speed ratios to mmdet's fp32 eager model.
GOALS = {'bf16': 3.0, 'int8': 4.0}


def build_candidates(ours: ResNeSt, args: argparse.Namespace,
                     work_dir: str) -> Dict[str, nn.Module]:
    """Every model of the comparison, in eval mode, by name."""
    models: Dict[str, nn.Module] = {
        'mmdet': build_peer('mmdet', args.arch, ours)}
    models['mmdet'].eval()  # (mmdet's eval() returns None: no chaining)
    models['ours-deploy'] = deploy_copy(ours, channels_last=True)
    calibration = photo_batches(CALIBRATION_PHOTOS, args.input_size)
    int8 = quantize_int8(deploy_copy(ours), calibration,
                         os.path.join(work_dir, 'backbone_int8.onnx'))
    models['ort-fp32'] = OrtBackbone(int8.replace('.onnx', '_fp32.onnx'))
    models['ort-int8'] = OrtBackbone(int8)
    models['bf16'] = Bf16Backbone(deploy_copy(ours))
    if args.compile:
        models['ours-deploy-compiled'] = compiled_deploy(
            copy.deepcopy(models['ours-deploy']))
        models['bf16-compiled'] = Bf16Backbone(deploy_copy(ours),
                                               compile=True)
    return models


def bench_low_precision(args: argparse.Namespace) -> dict:
    torch.manual_seed(0)
    ours = ResNeSt(arch=args.arch, norm_eval=False).eval()
    x = torch.randn(args.batch_size, 3, args.input_size, args.input_size)
    photos = photo_batches(CHECK_PHOTOS, args.input_size)
    cpu = cpu_features()
    result = dict(config=vars(args), cpu=cpu,
                  slow_here=[p for p in GOALS if not native_support(p, cpu)],
                  torch=torch.__version__, threads=torch.get_num_threads(),
                  onnxruntime_spinning='off', peers={})
    with tempfile.TemporaryDirectory() as work_dir:
        models = build_candidates(ours, args, work_dir)
        with torch.no_grad():
            want = [ours(p) for p in photos]

            def step(model):
                return lambda: model(x)

            steps = {name: step(m) for name, m in models.items()}
            for name, model in models.items():
                steps[name]()  # compiles, builds onnxruntime's kernels
                got = [model(p) for p in photos]
                cosines = [level_cosines(w, g) for w, g in zip(want, got)]
                result['peers'][name] = dict(min_cosine_per_level=[
                    min(c[i] for c in cosines)
                    for i in range(len(cosines[0]))])
            times = interleaved(steps, torch.device('cpu'), args.warmup,
                                args.repeats)
    for name, seconds in times.items():
        result['peers'][name]['eval'] = summary(seconds, args.batch_size)
    result['targets'] = low_precision_targets(result)
    return result


def _ratio(result: dict, name: str) -> float:
    peers = result['peers']
    return (peers['mmdet']['eval']['median_s']
            / peers[name]['eval']['median_s'])


def low_precision_targets(result: dict) -> List[dict]:
    """bf16 and int8 speed over mmdet's fp32 eager model (the best bf16
    candidate), onnxruntime fp32 over PyTorch fp32, features within 0.99
    cosine of fp32."""
    peers = result['peers']
    rows = []
    bf16 = max((n for n in peers if n.startswith('bf16')),
               key=lambda n: _ratio(result, n))
    rows.append(target(f'{bf16} speed / mmdet fp32 eager',
                       _ratio(result, bf16), GOALS['bf16']))
    rows.append(target('ort-int8 speed / mmdet fp32 eager',
                       _ratio(result, 'ort-int8'), GOALS['int8']))
    rows.append(target('ort-fp32 speed / mmdet fp32 eager (PyTorch)',
                       _ratio(result, 'ort-fp32'), 1.0))
    for name in (bf16, 'ort-int8'):
        rows.append(target(f'{name} min per-level cosine to fp32 (photos)',
                           min(peers[name]['min_cosine_per_level']), 0.99))
    return rows


def low_precision_markdown(result: dict) -> List[str]:
    cfg, cpu = result['config'], result['cpu']
    lines = [f"{cfg['arch']}, batch {cfg['batch_size']}, "
             f"{cfg['input_size']}x{cfg['input_size']}, "
             f"{result['threads']} threads, {cfg['repeats']} interleaved "
             f"repeats; CPU {describe_cpu(cpu)}; "
             'onnxruntime spin-waiting off', '',
             '| model | ms / batch (median) | speed / mmdet fp32 eager | '
             'min cosine to fp32, per level |', '|---|---|---|---|']
    for name, peer in result['peers'].items():
        ms = peer['eval']['median_s'] * 1000
        cos = ', '.join(f'{c:.5f}' for c in peer['min_cosine_per_level'])
        lines.append(f'| {name} | {ms:.1f} | {_ratio(result, name):.2f} | '
                     f'{cos} |')
    for note in slow_precision_notes(result['slow_here']):
        lines += ['', note]
    return lines
