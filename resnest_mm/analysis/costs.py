"""What each ResNeSt variant costs: parameters, FLOPs, activations and eval
speed, beside mmdet's ResNet-50 and ResNet-101.

One counter for every model: mmengine's ``FlopAnalyzer`` and
``ActivationAnalyzer`` (fvcore's rules, one JIT trace of an eval forward of
one image). Its conventions:

- one multiply-add is one FLOP; convs (``fc1``/``fc2`` of the split attention
  are 1x1 convs) count ``out_elements * in_channels / groups * kh * kw``,
  biases nothing;
- eval BatchNorm counts 2 per element (1 without affine), adaptive average
  pooling 1 per input element;
- element-wise ops count nothing: ReLU, the radix softmax (sigmoid for
  radix 1), the split sum and the attention-weighted sum, the residual add,
  max pooling and the ``avd`` average pooling;
- activations are the output elements of every conv.

``torch.utils.flop_counter.FlopCounterMode`` agrees on the convs (it reports
2 FLOPs per multiply-add) and counts neither BatchNorm nor pooling.

Speed is one :func:`~resnest_mm.benchmark.timing.interleaved` run of eval
forwards in fp32 over all models, so machine load hits every row alike.
"""
import copy
import os
import platform
from typing import Callable, Dict, List, Optional, Sequence

import torch
from mmengine.analysis import ActivationAnalyzer, FlopAnalyzer
from torch import nn

from resnest_mm.benchmark.timing import (eval_step, interleaved, summary,
                                         write_report)
from resnest_mm.models import ARCH_PRESETS, ResNeSt

#: The reference models, by the name their table row carries.
RESNETS = {'mmdet-resnet50': 50, 'mmdet-resnet101': 101}
#: The row speed ratios are taken to.
REFERENCE = 'mmdet-resnet50'
#: The name of the table's markers in the docs (:mod:`.doc_tables`).
DOC_TABLE = 'cost-table'


def variant_aliases() -> Dict[str, List[str]]:
    """One row per distinct architecture: the first name of each preset in
    :data:`ARCH_PRESETS` (the timm names come first) -> its other names."""
    rows: Dict[str, List[str]] = {}
    first = {}
    for name, preset in ARCH_PRESETS.items():
        if preset in first:
            rows[first[preset]].append(name)
        else:
            first[preset] = name
            rows[name] = []
    return rows


def model_names() -> List[str]:
    """Every row of the table, ResNeSt variants then the ResNets."""
    return list(variant_aliases()) + list(RESNETS)


def build_model(name: str) -> nn.Module:
    """A ResNeSt preset or one of :data:`RESNETS`, in eval mode, random
    weights (costs do not depend on the values)."""
    if name in RESNETS:
        from mmdet.models.backbones import ResNet
        model = ResNet(depth=RESNETS[name])
    elif name in ARCH_PRESETS:
        model = ResNeSt(arch=name)
    else:
        raise ValueError(f'model {name!r} is neither a ResNeSt preset nor '
                         f'one of {sorted(RESNETS)}; choose from '
                         f'{model_names()}')
    model.eval()  # (mmdet's ResNet.train() returns None: no chaining)
    return model


def count_costs(model: nn.Module, input_size: int,
                in_channels: int = 3) -> dict:
    """Parameters, FLOPs (multiply-adds, also by operator) and activations
    of one forward of a ``(1, in_channels, input_size, input_size)`` input;
    ``uncounted_ops``: the traced ops the counter gives no FLOPs."""
    inputs = (torch.randn(1, in_channels, input_size, input_size), )
    flops, acts = FlopAnalyzer(model, inputs), ActivationAnalyzer(
        model, inputs)
    for analyzer in (flops, acts):
        analyzer.unsupported_ops_warnings(False)
        analyzer.uncalled_modules_warnings(False)
    return dict(params=sum(p.numel() for p in model.parameters()),
                flops=flops.total(), flops_by_operator=dict(
                    flops.by_operator()), activations=acts.total(),
                uncounted_ops=sorted(flops.unsupported_ops()))


def speed_rows(models: Dict[str, nn.Module], input_size: int, batch: int,
               repeats: int, warmup: int = 1,
               deploy: bool = False) -> Dict[str, dict]:
    """Eval forward speed of every model (fp32, NCHW input), interleaved:
    name -> :func:`~resnest_mm.benchmark.timing.summary` plus
    ``ratio_to_reference`` (images/s over :data:`REFERENCE`'s, when timed).
    With ``deploy`` each ResNeSt also runs after ``switch_to_deploy()``, as
    ``<name>:deploy``."""
    steps: Dict[str, Callable[[], object]] = {}
    device = torch.device('cpu')
    x = torch.randn(batch, 3, input_size, input_size)
    for name, model in models.items():
        steps[name] = eval_step(model, x, device, 'fp32')
        if deploy and isinstance(model, ResNeSt):
            fast = copy.deepcopy(model).switch_to_deploy()
            steps[f'{name}:deploy'] = eval_step(fast, x, device, 'fp32')
    times = interleaved(steps, device, warmup, repeats)
    rows = {name: summary(seconds, batch) for name, seconds in times.items()}
    if REFERENCE in rows:
        ref = rows[REFERENCE]['images_per_s']
        for row in rows.values():
            row['ratio_to_reference'] = row['images_per_s'] / ref
    return rows


def cost_table(names: Sequence[str], input_size: int, batch: int = 1,
               repeats: int = 3, speed: bool = True,
               deploy: bool = False) -> dict:
    """Everything the table shows, and the settings it was measured in."""
    if input_size < 32:
        raise ValueError(f'input_size={input_size} is too small; the '
                         'backbones downsample by 32, use at least 32')
    models = {name: build_model(name) for name in names}
    aliases = variant_aliases()
    aliases.update({name: [f'ResNet(depth={depth})']
                    for name, depth in RESNETS.items()})
    rows = {name: dict(aliases=aliases.get(name, []),
                       **count_costs(model, input_size))
            for name, model in models.items()}
    result = dict(input_size=input_size, batch=batch, repeats=repeats,
                  threads=torch.get_num_threads(), torch=torch.__version__,
                  cpu=platform.processor() or platform.machine(),
                  load_average_before=os.getloadavg(), rows=rows)
    if speed:
        timed = speed_rows(models, input_size, batch, repeats, deploy=deploy)
        for name, row in rows.items():
            row['eval'] = timed[name]
            row['deploy_eval'] = timed.get(f'{name}:deploy')
        result['load_average_after'] = os.getloadavg()
    return result


def _fmt(value: Optional[float], spec: str) -> str:
    return '-' if value is None else format(value, spec)


def markdown(result: dict) -> List[str]:
    """The table, then one line on how it was measured."""
    rows = result['rows']
    timed = any('eval' in r for r in rows.values())
    deploy = any(r.get('deploy_eval') for r in rows.values())
    head = ['model', 'also called', 'params (M)', 'FLOPs (G)',
            'activations (M)']
    if timed:
        head += ['eval images/s', f'x {REFERENCE}']
    if deploy:
        head += ['deploy images/s']
    lines = ['| ' + ' | '.join(head) + ' |', '|---' * len(head) + '|']
    for name, row in rows.items():
        cells = [f'`{name}`', ', '.join(f'`{a}`' for a in row['aliases']),
                 f"{row['params'] / 1e6:.1f}", f"{row['flops'] / 1e9:.2f}",
                 f"{row['activations'] / 1e6:.1f}"]
        if timed:
            ev = row.get('eval') or {}
            cells += [_fmt(ev.get('images_per_s'), '.1f'),
                      _fmt(ev.get('ratio_to_reference'), '.2f')]
        if deploy:
            cells.append(_fmt((row.get('deploy_eval') or {}).get(
                'images_per_s'), '.1f'))
        lines.append('| ' + ' | '.join(cells) + ' |')
    size = result['input_size']
    note = (f"Counts: one {size}x{size} image, mmengine `FlopAnalyzer` / "
            '`ActivationAnalyzer` (1 FLOP = 1 multiply-add; convs, eval '
            'BatchNorm and adaptive pooling; element-wise ops uncounted).')
    if timed:
        note += (f" Speed: eval forward, fp32, batch {result['batch']}, "
                 f"median of {result['repeats']} interleaved repeats, "
                 f"threads: {result['threads']}, {result['cpu']}, torch "
                 f"{result['torch']}; load average "
                 f"{result['load_average_before'][0]:.1f} before, "
                 f"{result['load_average_after'][0]:.1f} after.")
    return lines + ['', note]


def chart(result: dict, path: str) -> None:
    """Eval images/s against GFLOPs (PNG): the ResNeSt depths as one
    labelled line, the "fast" variants (``avd_first``, whose points crowd
    around ResNeSt-50's FLOPs) as legend entries, the ResNets in grey."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from matplotlib.ticker import ScalarFormatter
    rows = {n: r for n, r in result['rows'].items() if r.get('eval')}
    if not rows:
        raise ValueError('no speed measured: a chart needs a run without '
                         'skip-speed')
    points = {name: (row['flops'] / 1e9, row['eval']['images_per_s'])
              for name, row in rows.items()}
    fig, ax = plt.subplots(figsize=(6, 4), dpi=90)
    depths = [n for n in points
              if n in ARCH_PRESETS and not ARCH_PRESETS[n].avd_first]
    ax.plot(*zip(*(points[n] for n in depths)), '-o', ms=4,
            color='tab:blue', label='ResNeSt by depth')
    for name in depths + [n for n in points if n in RESNETS]:
        ax.annotate(name, points[name], fontsize=7, xytext=(4, 2),
                    textcoords='offset points')
    for name in (n for n in points if n in RESNETS):
        ax.plot(*points[name], 's', ms=5, color='tab:gray')
    fast = [n for n in points if n in ARCH_PRESETS and n not in depths]
    for name, marker in zip(fast, 'v^<>dPXh*'):
        ax.plot(*points[name], marker, ms=5, linestyle='none', label=name)
    ax.set_xscale('log')
    ax.set_yscale('log')
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_formatter(ScalarFormatter())
        axis.set_minor_formatter(ScalarFormatter())
    ax.tick_params(which='both', labelsize=7)
    ax.set_xlabel(f"GFLOPs (multiply-adds), {result['input_size']}px")
    ax.set_ylabel(f"eval images/s, batch {result['batch']}, fp32, CPU")
    ax.grid(True, which='both', linewidth=0.3)
    ax.legend(fontsize=6, loc='upper right')
    fig.tight_layout()
    os.makedirs(os.path.dirname(path) or '.', exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def write_outputs(result: dict, out_dir: str) -> List[str]:
    """``cost_table.json`` and ``cost_table.md`` in ``out_dir``; returns
    the Markdown lines."""
    lines = markdown(result)
    write_report(result, lines, out_dir, 'cost_table')
    return lines
