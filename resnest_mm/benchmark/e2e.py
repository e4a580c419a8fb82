"""End-to-end view for ``benchmark e2e``: Faster R-CNN train steps.

Builds our ``configs/faster_rcnn_resnest50_fpn.py`` and mmdet's own ResNeSt-50
Faster R-CNN config from the mmdet package, both through mmengine's ``Config``
and mmdet's ``MODELS``. ``import resnest_mm`` makes ``type='ResNeSt'`` ours, so
the stock model is built with mmdet's class passed as the type itself. SyncBN
becomes BN (one process), no pretrained weights are loaded, and the stock
model gets our model's state dict (same keys), so both start from the same
weights. Each iteration is ``model.train_step`` (data preprocessor, losses,
backward, SGD step) on one synthetic batch (``mmdet.testing.demo_mm_inputs``).
"""
import copy
import os
from typing import Callable, Dict, List, Optional

import torch
from torch import nn

from resnest_mm.benchmark.timing import (interleaved, peak_memory_bytes, summary,
                                   target)

STOCK_CONFIG = ('resnest/faster-rcnn_s50_fpn_syncbn-backbone+head_ms-range-'
                '1x_coco.py')
OURS_CONFIG = 'configs/faster_rcnn_resnest50_fpn.py'


def stock_config_path(name: str = STOCK_CONFIG) -> str:
    """A config shipped inside the installed mmdet package."""
    import mmdet
    return os.path.join(os.path.dirname(mmdet.__file__), '.mim', 'configs',
                        name)


def build_detector(config: str, stock_backbone: bool,
                   cfg_options: Optional[dict] = None) -> nn.Module:
    """A detector from ``config`` (plus ``cfg_options``, mmengine style) in
    train mode, SyncBN reverted to BN and no pretrained backbone.
    ``stock_backbone`` builds mmdet's ``ResNeSt``."""
    from mmdet.models.backbones.resnest import ResNeSt as MMDetResNeSt
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    from mmengine.model import revert_sync_batchnorm

    from resnest_mm.engine.run_config import read_config

    register_all_modules(init_default_scope=True)
    cfg = read_config(config, cfg_options)
    cfg.model.backbone.init_cfg = None
    if stock_backbone:
        cfg.model.backbone.type = MMDetResNeSt
    model = revert_sync_batchnorm(MODELS.build(cfg.model))
    return model.train()


def synthetic_batch(batch_size: int, image_size: int, boxes: int,
                    device: torch.device) -> dict:
    from mmdet.testing import demo_mm_inputs
    data = demo_mm_inputs(batch_size, (3, image_size, image_size),
                          num_items=[boxes] * batch_size, num_classes=80)
    data['inputs'] = [img.to(device) for img in data['inputs']]
    data['data_samples'] = [s.to(device) for s in data['data_samples']]
    return data


def optim_wrapper(model: nn.Module, device: torch.device, precision: str):
    from mmengine.optim import AmpOptimWrapper, OptimWrapper
    sgd = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)
    if precision == 'amp':  # (CUDA only: bench_e2e checks)
        return AmpOptimWrapper(optimizer=sgd)
    return OptimWrapper(optimizer=sgd)


def make_step(model: nn.Module, data: dict, device: torch.device,
              precision: str) -> Callable[[], None]:
    wrapper = optim_wrapper(model, device, precision)

    def step():
        model.train_step(copy.copy(data), wrapper)
    return step


def bench_e2e(args, speedup_target: float = 1.5) -> dict:
    """Iterations/s and peak memory of both detectors, interleaved.

    ``args.channels_last`` puts both models in NHWC,
    ``args.ours_channels_last`` only ours (mmdet's stock config as its users
    run it)."""
    device = torch.device(args.device)
    if args.precision == 'amp' and device.type != 'cuda':
        # CPU autocast hands mmcv's CPU nms bf16 boxes with fp32 scores, and
        # it stops ("expected scalar type Float but found BFloat16").
        raise ValueError(f'--precision amp needs a CUDA device, got '
                         f'--device {args.device}; use --precision fp32')
    ours_config = args.ours_config
    note = None
    if not os.path.exists(ours_config):
        note = (f'{ours_config} not found: both sides use the stock config '
                '(ours = the same config with our ResNeSt)')
        ours_config = stock_config_path()
    torch.manual_seed(0)
    models: Dict[str, nn.Module] = {
        'ours': build_detector(ours_config, False, args.cfg_options)}
    models['mmdet'] = build_detector(stock_config_path(), True,
                                     args.cfg_options)
    missing, unexpected = models['mmdet'].load_state_dict(
        models['ours'].state_dict(), strict=False)
    for name, model in models.items():
        model.to(device)
        if args.channels_last or (name == 'ours' and args.ours_channels_last):
            model.to(memory_format=torch.channels_last)
    data = synthetic_batch(args.batch_size, args.image_size, args.boxes,
                           device)
    steps = {name: make_step(m, data, device, args.precision)
             for name, m in models.items()}
    times = interleaved(steps, device, args.warmup, args.repeats)
    result = dict(config=vars(args), note=note, ours_config=ours_config,
                  weights_not_shared=sorted(missing) + sorted(unexpected),
                  threads=torch.get_num_threads(), models={})
    for name, model in models.items():
        stats = summary(times[name], args.batch_size)
        stats['iters_per_s'] = 1 / stats['median_s']
        model.zero_grad(set_to_none=True)
        peak = peak_memory_bytes(steps[name], device)
        stats['train_peak_mib'] = peak / 2**20
        result['models'][name] = stats
    speedup = (result['models']['ours']['iters_per_s'] /
               result['models']['mmdet']['iters_per_s'])
    result['targets'] = [target('Faster R-CNN S-50 train iter/s / mmdet '
                                'stock config', speedup, speedup_target)]
    return result


def e2e_markdown(result: dict) -> List[str]:
    cfg = result['config']
    lines = [f"Faster R-CNN S-50 train step, batch {cfg['batch_size']}, "
             f"{cfg['image_size']}^2, {cfg['device']}, {cfg['precision']}, "
             f"{result['threads']} threads", '',
             '| model | iter/s (median) | IQR s | x mmdet | peak MiB |',
             '|---|---|---|---|---|']
    ref = result['models']['mmdet']['iters_per_s']
    for name, m in result['models'].items():
        lines.append(f"| {name} | {m['iters_per_s']:.3f} | "
                     f"{m['q1_s']:.2f}-{m['q3_s']:.2f} | "
                     f"{m['iters_per_s'] / ref:.2f} | "
                     f"{m['train_peak_mib']:.0f} |")
    return lines + ([f"Note: {result['note']}"] if result['note'] else [])
