"""``benchmark backbone``: our ResNeSt beside mmdet's, mmseg's, the official
and timm's, in one process.

Eval forward and train forward+backward speed (images/s) and the peak memory
of an eval forward and of a train step, interleaved (:mod:`.timing`), per
precision (fp32, amp, bf16) and layout (NCHW, NHWC); ratios are to mmdet's
model in the same setting, and the targets are checked against mmdet in fp32
NCHW. Also the dense 3x3 conv rate of the device and the share of it each
model reaches.
"""
import argparse
import copy
import statistics
from typing import Dict, List, Optional, Sequence

import torch
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

from resnest_mm.benchmark.peers import build_peer, compiled_deploy, convert
from resnest_mm.benchmark.timing import (eval_step, interleaved,
                                         peak_memory_bytes, summary, target,
                                         train_step)
from resnest_mm.models import ResNeSt

#: Models that only run inference (no train step, no train memory).
EVAL_ONLY = ('ours-deploy', 'ours-deploy-compiled')


def dense_conv_rate(device: torch.device, precision: str, channels_last: bool,
                    repeats: int) -> float:
    """FLOP/s of one large 3x3 conv (256 -> 256 channels), the card's or
    core's dense-conv rate in this setting."""
    batch, side = (32, 56) if device.type == 'cuda' else (2, 28)
    conv = convert(nn.Conv2d(256, 256, 3, padding=1), device, precision,
                   channels_last).eval()
    x = torch.randn(batch, 256, side, side, device=device,
                    dtype=next(conv.parameters()).dtype)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    step = eval_step(conv, x, device, precision)
    seconds = interleaved({'conv': step}, device, 1, repeats)['conv']
    flops = 2 * batch * side * side * 256 * 256 * 9
    return flops / statistics.median(seconds)


def max_abs_diff(a: Sequence[Tensor], b: Sequence[Tensor]) -> float:
    return max((x.float() - y.float()).abs().max().item()
               for x, y in zip(a, b))


def bench_backbones(args: argparse.Namespace) -> dict:
    device = torch.device(args.device)
    torch.manual_seed(0)
    ours = ResNeSt(arch=args.arch, norm_eval=False)
    models, skipped = {}, {}
    for name in args.peers:
        try:
            models[name] = build_peer(name, args.arch, ours)
        except (ValueError, ImportError) as err:
            skipped[name] = str(err)
    x = torch.randn(args.batch_size, 3, args.input_size, args.input_size)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        ours.eval()(x)
    result = dict(config=vars(args), skipped=skipped, settings=[],
                  flops_per_image=counter.get_total_flops() / x.shape[0],
                  torch=torch.__version__, threads=torch.get_num_threads())
    for precision in args.precisions:
        for layout in args.channels_last:
            result['settings'].append(
                bench_setting(models, x, device, precision, layout == 'on',
                              args, result['flops_per_image']))
    result['targets'] = backbone_targets(result)
    return result


def bench_setting(models: Dict[str, nn.Module], x: Tensor,
                  device: torch.device, precision: str, channels_last: bool,
                  args: argparse.Namespace, flops_per_image: float) -> dict:
    if precision in ('amp', 'bf16') and device.type == 'cpu':
        print(f'note: {precision} on CPU runs bfloat16 kernels')
    setting = dict(precision=precision, channels_last=channels_last,
                   peers={})
    converted = {
        name: convert(copy.deepcopy(model), device, precision, channels_last)
        for name, model in models.items()
    }
    if args.compile and 'ours-deploy' in converted:
        converted['ours-deploy-compiled'] = compiled_deploy(
            copy.deepcopy(converted['ours-deploy']))
    x = x.to(device, torch.bfloat16 if precision == 'bf16' else x.dtype)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    images = x.shape[0]
    peers = setting['peers']
    if 'eval' in args.modes:
        for model in converted.values():
            model.eval()
        steps = {name: eval_step(m, x, device, precision)
                 for name, m in converted.items()}
        outs = {name: step() for name, step in steps.items()}
        times = interleaved(steps, device, args.warmup, args.repeats)
        for name in converted:
            peers.setdefault(name, {})['eval'] = summary(times[name], images)
            shared = name.startswith('ours-') or name in ('mmdet', 'mmseg')
            if shared and 'ours' in outs:
                peers[name]['eval']['max_abs_diff_vs_ours'] = max_abs_diff(
                    outs[name], outs['ours'])
    trainable = {n: m for n, m in converted.items() if n not in EVAL_ONLY}
    for model in trainable.values():
        model.train()
    steps = {name: train_step(m, x, device, precision)
             for name, m in trainable.items()}
    if 'train' in args.modes:
        times = interleaved(steps, device, args.warmup, args.repeats)
        for name in trainable:
            peers.setdefault(name, {})['train'] = summary(times[name], images)
    if 'memory' in args.modes:
        for name, model in converted.items():
            model.eval()  # (mmdet's train() returns None: no chaining)
            step = eval_step(model, x, device, precision)
            if 'eval' not in args.modes:
                step()  # compilation, lazy one-time allocations
            peers.setdefault(name, {})['eval_peak_mib'] = peak_memory_bytes(
                step, device) / 2**20
        for name, model in trainable.items():
            model.train()
            if 'train' not in args.modes:
                steps[name]()  # lazy one-time allocations are not the peak
            model.zero_grad(set_to_none=True)
            peers.setdefault(name, {})['train_peak_mib'] = peak_memory_bytes(
                train_step(model, x, device, precision, free_grads=False),
                device) / 2**20
    rate = dense_conv_rate(device, precision, channels_last, args.repeats)
    setting['dense_conv_gflops'] = rate / 1e9
    for name, peer in peers.items():
        if 'eval' in peer:
            achieved = flops_per_image * peer['eval']['images_per_s']
            peer['eval']['fraction_of_conv_rate'] = achieved / rate
    return setting


def _speed(setting: Optional[dict], peer: str, mode: str) -> Optional[float]:
    if setting is None:
        return None
    return setting['peers'].get(peer, {}).get(mode, {}).get('images_per_s')


def backbone_targets(result: dict) -> List[dict]:
    """The issue's backbone targets, as values from this run. The reference
    is mmdet's eager model in fp32 and its default layout (NCHW)."""
    settings = result['settings']
    ref = next((s for s in settings if s['precision'] == 'fp32'
                and not s['channels_last']), None)
    mmdet_eval = _speed(ref, 'mmdet', 'eval')
    mmdet_train = _speed(ref, 'mmdet', 'train')
    rows = []
    if mmdet_eval:
        for peer, goal in (('ours', 1.0), ('ours-deploy', 1.5),
                           ('ours-deploy-compiled', 1.5)):
            speed = _speed(ref, peer, 'eval')
            rows.append(target(f'{peer} eval speed / mmdet eager eval',
                                speed and speed / mmdet_eval, goal))
    if mmdet_train:
        speed = _speed(ref, 'ours', 'train')
        rows.append(target('ours train speed / mmdet train',
                            speed and speed / mmdet_train, 1.0))
    if ref is not None:
        for peer, tol in (('ours', 1e-5), ('ours-deploy', 1e-4),
                          ('ours-deploy-compiled', 1e-4)):
            other = 'mmdet' if peer == 'ours' else 'ours'
            key = 'max_abs_diff_vs_ours'
            diff = ref['peers'].get(other if peer == 'ours' else peer,
                                    {}).get('eval', {}).get(key)
            rows.append(target(f'{peer} eval max abs diff vs {other}', diff,
                                tol, higher_is_better=False))
    for s in settings:
        if s['precision'] == 'bf16' and result['config']['device'] == 'cuda':
            best = max((p['eval'].get('fraction_of_conv_rate', 0)
                        for n, p in s['peers'].items()
                        if n.startswith('ours') and 'eval' in p), default=0)
            layout = 'NHWC' if s['channels_last'] else 'NCHW'
            rows.append(target(f'ours bf16 eval ({layout}) / dense conv rate',
                                best, 0.4))
    return [r for r in rows if r is not None]


def _cell(stats: Optional[dict], ref: Optional[dict]) -> List[str]:
    if not stats:
        return ['-', '-']
    speed = f"{stats['images_per_s']:.2f} ({stats['q1_s']:.3f}-" \
            f"{stats['q3_s']:.3f} s)"
    ratio = f"{stats['images_per_s'] / ref['images_per_s']:.2f}" \
        if ref else '-'
    return [speed, ratio]


def backbone_markdown(result: dict) -> List[str]:
    cfg = result['config']
    lines = [f"{cfg['arch']}, batch {cfg['batch_size']}, "
             f"{cfg['input_size']}x{cfg['input_size']}, {cfg['device']}, "
             f"{result['threads']} threads, {cfg['repeats']} interleaved "
             f"repeats; torch {result['torch']}", '',
             '| precision | NHWC | model | eval img/s (IQR of s) | x mmdet '
             '| train img/s (IQR of s) | x mmdet | eval peak MiB '
             '| train peak MiB | x mmdet | eval / conv rate |',
             '|---' * 11 + '|']
    for s in result['settings']:
        ref = s['peers'].get('mmdet', {})
        for name, p in s['peers'].items():
            mem, ref_mem = p.get('train_peak_mib'), ref.get('train_peak_mib')
            eval_mem = p.get('eval_peak_mib')
            frac = p.get('eval', {}).get('fraction_of_conv_rate')
            lines.append('| ' + ' | '.join(
                [s['precision'], 'on' if s['channels_last'] else 'off', name]
                + _cell(p.get('eval'), ref.get('eval'))
                + _cell(p.get('train'), ref.get('train'))
                + [f'{eval_mem:.0f}' if eval_mem else '-',
                   f'{mem:.0f}' if mem else '-',
                   f'{mem / ref_mem:.2f}' if mem and ref_mem else '-',
                   f'{frac:.0%}' if frac else '-']) + ' |')
    lines += ['', 'Dense 3x3 conv rate (GFLOP/s): ' + ', '.join(
        f"{s['precision']}/{'NHWC' if s['channels_last'] else 'NCHW'} "
        f"{s['dense_conv_gflops']:.1f}" for s in result['settings'])]
    lines += [f'Skipped: {name}: {why}'
              for name, why in result['skipped'].items()]
    return lines
