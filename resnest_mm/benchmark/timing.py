"""Measuring helpers shared by every ``benchmark`` command.

Timing is interleaved: per repeat every candidate runs once, in an order
rotated by one each repeat, so drifting machine load hits all alike.

Peak memory of a step: on CUDA ``torch.cuda.max_memory_allocated``; on CPU,
where torch keeps no such counter, the profiler's allocation events
(``profile_memory=True``) summed in time order: the peak of bytes held by
torch's CPU allocator above the level at the start of the step.
"""
import json
import os
import statistics
import time
from contextlib import nullcontext
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn
from torch.profiler import ProfilerActivity, profile


def sync(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def wall_time(fn: Callable[[], object], device: torch.device) -> float:
    sync(device)
    start = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - start


def interleaved(fns: Dict[str, Callable[[], object]], device: torch.device,
                warmup: int, repeats: int) -> Dict[str, List[float]]:
    """Seconds per call of each function, measured round robin."""
    names = list(fns)
    for _ in range(warmup):
        for name in names:
            fns[name]()
    times: Dict[str, List[float]] = {name: [] for name in names}
    for r in range(repeats):
        for name in names[r % len(names):] + names[:r % len(names)]:
            times[name].append(wall_time(fns[name], device))
    return times


def summary(seconds: Sequence[float], images: int) -> dict:
    """Median, quartiles and range of the times, and images/s at the median."""
    q = (statistics.quantiles(seconds, n=4, method='inclusive')
         if len(seconds) > 1 else [seconds[0]] * 3)
    return dict(median_s=q[1], q1_s=q[0], q3_s=q[2], min_s=min(seconds),
                max_s=max(seconds), images_per_s=images / q[1], n=len(seconds))


def memory_bytes(step: Callable[[], object],
                 device: torch.device) -> Tuple[int, int]:
    """``(peak, held)``: the most bytes torch held on ``device`` while
    ``step`` ran, and the bytes still held when it returned, both counted
    from the level at its start (CPU: the profiler's allocation events
    summed in time order)."""
    if device.type == 'cuda':
        sync(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        kept = step()  # noqa: F841  (what the step returns is still held)
        sync(device)
        return (torch.cuda.max_memory_allocated(device) - base,
                torch.cuda.memory_allocated(device) - base)
    with profile(activities=[ProfilerActivity.CPU],
                 profile_memory=True) as prof:
        kept = step()  # noqa: F841
    events = [e for e in prof.profiler.kineto_results.events()
              if e.name() == '[memory]'
              and e.device_type() == torch.autograd.DeviceType.CPU]
    current = peak = 0
    for event in sorted(events, key=lambda e: e.start_ns()):
        current += event.nbytes()
        peak = max(peak, current)
    return peak, current


def peak_memory_bytes(step: Callable[[], object], device: torch.device) -> int:
    """Peak bytes above the start level while ``step`` runs; see
    :func:`memory_bytes`."""
    return memory_bytes(step, device)[0]


def autocast(device: torch.device, precision: str):
    if precision != 'amp':
        return nullcontext()
    dtype = torch.float16 if device.type == 'cuda' else torch.bfloat16
    return torch.autocast(device.type, dtype=dtype)


def eval_step(model: nn.Module, x: Tensor, device: torch.device,
              precision: str) -> Callable[[], object]:
    def step():
        with torch.no_grad(), autocast(device, precision):
            return model(x)
    return step


def train_step(model: nn.Module, x: Tensor, device: torch.device,
               precision: str, free_grads: bool = True) -> Callable[[], None]:
    """Forward + backward of ``sum(mean(feature))``; the previous gradients
    are freed first unless ``free_grads=False`` (free them before measuring
    memory, so that their release does not offset the peak)."""
    def step():
        if free_grads:
            model.zero_grad(set_to_none=True)
        with autocast(device, precision):
            outs = model(x)
        sum(o.float().mean() for o in outs).backward()
    return step


def target(name: str, value: Optional[float], target: float,
            higher_is_better: bool = True) -> Optional[dict]:
    if value is None:
        return None
    met = value >= target if higher_is_better else value <= target
    return dict(name=name, value=value, target=target, met=met,
                better='higher' if higher_is_better else 'lower')

def write_report(result: dict, markdown: List[str], out_dir: str,
                 name: str) -> None:
    """``<out_dir>/<name>.json`` (everything) and ``<name>.md`` (tables)."""
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, f'{name}.json'), 'w') as f:
        json.dump(result, f, indent=2, default=str)
    with open(os.path.join(out_dir, f'{name}.md'), 'w') as f:
        f.write('\n'.join(markdown) + '\n')


def targets_table(targets: List[dict]) -> List[str]:
    """Markdown rows: target, value, goal, met."""
    lines = ['| target | value | goal | met |', '|---|---|---|---|']
    for t in targets:
        sign = '>=' if t['better'] == 'higher' else '<='
        lines.append(f"| {t['name']} | {t['value']:.3g} | {sign} "
                     f"{t['target']:g} | {'yes' if t['met'] else 'no'} |")
    return lines
