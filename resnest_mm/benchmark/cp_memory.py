"""``benchmark cp-memory``: what ``with_cp`` (activation checkpointing) saves
in a train step, and that it leaves the gradients unchanged."""
import argparse
import time
from typing import List

import torch

from resnest_mm.benchmark.timing import peak_memory_bytes, target, train_step
from resnest_mm.models import ResNeSt


def bench_cp_memory(args: argparse.Namespace) -> dict:
    """Peak train-step memory of ours with and without ``with_cp``, same
    weights and input, and the largest gradient difference between them."""
    device = torch.device(args.device)
    torch.manual_seed(0)
    plain = ResNeSt(arch=args.arch, norm_eval=False).to(device).train()
    ckpt = ResNeSt(arch=args.arch, norm_eval=False, with_cp=True)
    ckpt.load_state_dict(plain.state_dict())
    ckpt.to(device).train()
    x = torch.randn(args.batch_size, 3, args.input_size, args.input_size,
                    device=device)
    result = dict(config=vars(args), threads=torch.get_num_threads(),
                  torch=torch.__version__)
    for name, model in (('plain', plain), ('with_cp', ckpt)):
        step = train_step(model, x, device, 'fp32', free_grads=False)
        start = time.perf_counter()
        result[f'{name}_peak_mib'] = peak_memory_bytes(step, device) / 2**20
        result[f'{name}_step_s'] = time.perf_counter() - start
    grads = [(p.grad, q.grad) for p, q in zip(plain.parameters(),
                                             ckpt.parameters())]
    scale = max(g.abs().max().item() for g, _ in grads)
    result['grad_max_abs_diff'] = max((g - h).abs().max().item()
                                      for g, h in grads)
    result['grad_max_abs'] = scale
    saving = 1 - result['with_cp_peak_mib'] / result['plain_peak_mib']
    result['targets'] = [
        target('with_cp peak memory saving', saving, 0.4),
        target('with_cp grad max abs diff / max abs grad',
                result['grad_max_abs_diff'] / scale, 1e-4,
                higher_is_better=False)
    ]
    return result


def cp_memory_markdown(result: dict) -> List[str]:
    cfg = result['config']
    return [f"{cfg['arch']} train step, batch {cfg['batch_size']}, "
            f"{cfg['input_size']}x{cfg['input_size']}, {cfg['device']}", '',
            '| with_cp | peak MiB | step s |', '|---|---|---|',
            f"| False | {result['plain_peak_mib']:.0f} | "
            f"{result['plain_step_s']:.1f} |",
            f"| True | {result['with_cp_peak_mib']:.0f} | "
            f"{result['with_cp_step_s']:.1f} |"]
