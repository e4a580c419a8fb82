"""``benchmark deployed``: one image in, boxes (or a label map) out: the
per-image latency of the whole predict path on the CPU, preprocessing
excluded, post-processing included.

For each config (a Faster R-CNN or an EncoderDecoder segmentor), in one
process, interleaved (:func:`resnest_mm.benchmark.timing.interleaved`),
batch 1, at the config's test size:

- ``mmdet`` / ``mmseg``: the toolbox's own fp32 eager model from its stock
  ResNeSt config (:data:`STOCK_CONFIGS`; mmseg has DeepLabV3 only with
  S-101, so its depth is set to ours), with our weights where the keys agree;
- ``ours``: our config's fp32 eager model;
- ``deployed-<precision>``: the file ``tools/deployment/export_model.py
  --precision`` writes, run by :class:`~resnest_mm.deployment.
  deployed_model.DeployedModel`.

The image is a scikit-image photograph resized to the test size and put
through the config's test pipeline and data preprocessor once. int8
calibrates on the config's train images where they exist, else on other
photographs (the speed does not depend on the ranges). ``--profile`` adds
where the time goes per part (:mod:`resnest_mm.benchmark.part_profile`).
The result records the CPU and its instruction sets.
"""
import argparse
import copy
import os
import tempfile
from typing import Dict, List, Optional, Tuple

import torch
from torch import Tensor, nn

from resnest_mm.benchmark.part_profile import (eager_part_times,
                                               onnx_part_times, profile_table)
from resnest_mm.benchmark.timing import interleaved, summary, target
from resnest_mm.deployment.deployed_model import DeployedModel, image_batch
from resnest_mm.deployment.low_precision import (CALIBRATION_PHOTOS, FAST_ON,
                                                 cpu_features, describe_cpu,
                                                 native_support,
                                                 slow_precision_notes)
from resnest_mm.deployment.model_export import (build_model, load_config,
                                                model_registry)
from resnest_mm.deployment.shipping import (EXTENSIONS, calibration_images,
                                            ship)

#: The toolboxes' own ResNeSt configs (inside their packages), by scope;
#: ``{depth}`` is our backbone's depth (50 or 101).
STOCK_CONFIGS = {
    'mmdet': 'resnest/faster-rcnn_s{depth}_fpn_syncbn-backbone+head_'
             'ms-range-1x_coco.py',
    'mmseg': 'resnest/resnest_s101-d8_deeplabv3_4xb4-160k_ade20k-512x512.py'}
#: The issue's goal: deployed int8 per-image speed over the toolbox's.
INT8_GOAL = 3.0
#: The photograph timed (resized to the test size).
PHOTO = 'coffee.png'


def stock_config_path(scope: str, depth: int) -> Tuple[str, int]:
    """The toolbox's stock config for our backbone depth, and the depth its
    model gets: ours, or 50 (the smallest the toolboxes' ResNeSt has) for a
    toy depth. (mmseg's config is S-101's: the depth is set.)"""
    import importlib
    package = os.path.dirname(importlib.import_module(scope).__file__)
    stock = depth if depth in (50, 101) else 50
    path = os.path.join(package, '.mim', 'configs',
                        STOCK_CONFIGS[scope].format(depth=stock))
    return path, stock


def build_stock(scope: str, ours: nn.Module, depth: int,
                quick: bool = False) -> Tuple[nn.Module, dict]:
    """The toolbox's own model (its ResNeSt class) from its stock config,
    eval mode, SyncBN as BN, with our weights where names and shapes agree;
    and what was shared. ``quick``: a detector keeps 100 proposals, not
    1000 (its box head dominates a toy-sized image)."""
    from mmengine.model import revert_sync_batchnorm
    from mmengine.registry import DefaultScope
    path, stock_depth = stock_config_path(scope, depth)
    cfg, _ = load_config(path)
    notes = [] if stock_depth == depth else [
        f'ours is depth {depth}, the stock model {stock_depth}']
    if quick and scope == 'mmdet':
        cfg.model.test_cfg.rpn.update(nms_pre=100, max_per_img=100)
        notes.append('100 proposals')
    cfg.model.backbone.init_cfg = None
    cfg.model.backbone.depth = stock_depth
    if scope == 'mmdet':
        from mmdet.models.backbones.resnest import ResNeSt as Stock
    else:
        from mmseg.models.backbones.resnest import ResNeSt as Stock
        cfg.model.pretrained = None
    cfg.model.backbone.type = Stock
    with DefaultScope.overwrite_default_scope(scope):
        model = revert_sync_batchnorm(model_registry(scope).build(cfg.model))
    own = model.state_dict()
    shared = {k: v for k, v in ours.state_dict().items()
              if k in own and own[k].shape == v.shape}
    model.load_state_dict(shared, strict=False)
    info = dict(config=os.path.relpath(path, os.path.dirname(
        os.path.dirname(path))), note='; '.join(notes) or None,
        weights_shared=f'{len(shared)} of {len(own)} tensors')
    return model.eval(), info


def test_size(cfg, scope: str) -> Tuple[int, int]:
    """(H, W) the config tests at: the detector's Resize scale (long side,
    short side) as short x long, the segmentor's crop size."""
    if scope == 'mmseg':
        size = cfg.get('crop_size') or cfg.model.data_preprocessor.get('size')
        return tuple(size)
    for step in cfg.test_dataloader.dataset.pipeline:
        if step['type'].split('.')[-1] == 'Resize':
            long, short = sorted(step['scale'], reverse=True)
            return short, long
    raise ValueError('the test pipeline has no Resize step; pass '
                     '--image-size H W')


def photo_input(cfg, scope: str, model: nn.Module, size: Tuple[int, int],
                photo: str = PHOTO) -> Tuple[Tensor, list]:
    """A scikit-image photograph resized to ``size`` (H, W), through the
    config's test pipeline (annotations not loaded) and the model's data
    preprocessor: ``(1, 3, H', W')`` and its data samples."""
    import cv2
    import skimage
    image = cv2.imread(os.path.join(os.path.dirname(skimage.__file__),
                                    'data', photo))
    image = cv2.resize(image, size[::-1], interpolation=cv2.INTER_LINEAR)
    with torch.no_grad():
        data = model.data_preprocessor(image_batch(cfg, scope, image), False)
    return data['inputs'], data['data_samples']


def calibration(cfg, scope: str, model: nn.Module, size: Tuple[int, int],
                images: int) -> Tuple[List[Tensor], str]:
    """int8 calibration images: the config's train images when they are
    there, else scikit-image photographs at ``size``."""
    try:
        return (calibration_images(cfg, model.data_preprocessor, images),
                f'{images} train images')
    except (FileNotFoundError, OSError):
        photos = [photo_input(cfg, scope, model, size, p)[0]
                  for p in CALIBRATION_PHOTOS[:images]]
        return photos, (f'{len(photos)} scikit-image photographs (the '
                        "config's train images are not here)")


def build_candidates(config: str, checkpoint: Optional[str],
                     args: argparse.Namespace, work_dir: str
                     ) -> Tuple[Dict[str, object], dict]:
    """Every model of one config's comparison, by name, and a record of
    how they were made."""
    ours, scope = build_model(config, checkpoint)
    cfg, _ = load_config(config)
    from mmengine.model import revert_sync_batchnorm
    ours = revert_sync_batchnorm(ours).eval()
    size = (tuple(args.image_size) if args.image_size
            else test_size(cfg, scope))
    depth = cfg.model.backbone.get('depth', 50)
    stock, stock_info = build_stock(scope, ours, depth, args.quick)
    models: Dict[str, object] = {scope: stock, 'ours': ours}
    record = dict(config=config, checkpoint=checkpoint, scope=scope,
                  image_size=list(size), stock=stock_info)
    for precision in args.precisions:
        batches, note = [], None
        if precision == 'int8':
            batches, note = calibration(cfg, scope, ours, size,
                                        args.calib_images)
            record['calibration'] = note
        path = os.path.join(work_dir, f'{scope}_{precision}'
                            f'{EXTENSIONS[precision]}')
        ship(ours, scope, cfg, precision, path, size, batches, note)
        models[f'deployed-{precision}'] = DeployedModel(path)
    return models, record


def _predict(model, inputs: Tensor, samples: list, scope: str):
    if isinstance(model, DeployedModel):
        return lambda: model.predict(inputs, samples)
    if scope == 'mmdet':
        return lambda: model.predict(inputs, samples, rescale=True)
    return lambda: model.predict(inputs, samples)


def _no_grad(fn):
    def step():
        with torch.no_grad():
            return fn()
    return step


def _count(model, inputs: Tensor, samples: list, scope: str) -> int:
    """Detections of one predict (pixels for a segmentor)."""
    with torch.no_grad():
        out = _predict(model, inputs, copy.deepcopy(samples), scope)()[0]
    return (len(out.pred_instances) if scope == 'mmdet'
            else int(out.pred_sem_seg.data.numel()))


def bench_config(config: str, checkpoint: Optional[str],
                 args: argparse.Namespace) -> dict:
    """One config's latencies (and profile), all candidates interleaved."""
    with tempfile.TemporaryDirectory() as work_dir:
        models, record = build_candidates(config, checkpoint, args,
                                          work_dir)
        scope = record['scope']
        inputs, samples = photo_input(load_config(config)[0], scope,
                                      models['ours'], record['image_size'])
        record['input'] = list(inputs.shape)
        steps = {name: _no_grad(_predict(model, inputs, samples, scope))
                 for name, model in models.items()}
        times = interleaved(steps, torch.device('cpu'), args.warmup,
                            args.repeats)
        record['models'] = {}
        for name, model in models.items():
            record['models'][name] = dict(
                latency=summary(times[name], 1),
                outputs=_count(model, inputs, samples, scope))
        if args.profile:
            record['profile'] = profile(models, scope, inputs, samples,
                                        args)
    return record


def profile(models: Dict[str, object], scope: str, inputs: Tensor,
            samples: list, args: argparse.Namespace) -> dict:
    """Seconds per part of ours eager and of the ONNX files."""
    out = {}
    for name, model in models.items():
        if name == 'ours':
            with torch.no_grad():
                out[name] = eager_part_times(
                    model, scope, _predict(model, inputs, samples, scope),
                    args.repeats)
        elif isinstance(model, DeployedModel) and model.path.endswith(
                '.onnx'):
            out[name] = onnx_part_times(model.path, scope, inputs,
                                        args.repeats,
                                        torch.get_num_threads())
    return out


def parse_entries(entries: List[str]) -> List[Tuple[str, Optional[str]]]:
    """``CONFIG [CKPT] [CONFIG [CKPT] ...]`` -> (config, checkpoint) pairs:
    a ``.py`` starts an entry, anything else is the previous one's
    checkpoint."""
    pairs: List[Tuple[str, Optional[str]]] = []
    for entry in entries:
        if entry.endswith('.py'):
            pairs.append((entry, None))
        elif pairs and pairs[-1][1] is None:
            pairs[-1] = (pairs[-1][0], entry)
        else:
            raise ValueError(f'{entry!r}: a checkpoint follows its config '
                             '(CONFIG [CKPT] ...); configs end in .py')
    return pairs


def bench_deployed(args: argparse.Namespace) -> dict:
    cpu = cpu_features()
    result = dict(config=vars(args), cpu=cpu, torch=torch.__version__,
                  threads=torch.get_num_threads(), quick=args.quick,
                  omp_wait_policy=os.environ.get('OMP_WAIT_POLICY',
                                                 'default'),
                  slow_here=[p for p in args.precisions
                             if p in FAST_ON and not native_support(p, cpu)],
                  runs=[])
    for config, checkpoint in parse_entries(args.entries):
        torch.manual_seed(0)
        result['runs'].append(bench_config(config, checkpoint, args))
    result['targets'] = [t for run in result['runs']
                         for t in deployed_targets(run)]
    return result


def _speedup(run: dict, name: str) -> float:
    models = run['models']
    return (models[run['scope']]['latency']['median_s']
            / models[name]['latency']['median_s'])


def deployed_targets(run: dict) -> List[dict]:
    if 'deployed-int8' not in run['models']:
        return []
    name = os.path.basename(run['config'])
    return [target(f'{name}: deployed int8 speed / {run["scope"]} fp32 '
                   'eager', _speedup(run, 'deployed-int8'), INT8_GOAL)]


def deployed_markdown(result: dict) -> List[str]:
    cfg, cpu = result['config'], result['cpu']
    lines = [f"Batch 1, {result['threads']} threads, {cfg['repeats']} "
             f"interleaved repeats after {cfg['warmup']} warm-up; CPU "
             f"{describe_cpu(cpu)}; PyTorch's "
             f"OpenMP wait policy {result['omp_wait_policy']}, onnxruntime's "
             'spin-waiting off.', '']
    if result['quick']:
        lines += ['Quick mode: toy sizes; the numbers only show that every '
                  'path runs.', '']
    for run in result['runs']:
        h, w = run['input'][2:]
        lines += [f"`{run['config']}`, {h}x{w} input"
                  f"{'' if run['checkpoint'] else ' (random weights)'}; "
                  f"stock: `{run['stock']['config']}` "
                  f"({run['stock']['weights_shared']} of ours shared)"
                  + (f"; {run['stock']['note']}" if run['stock']['note']
                     else '')
                  + (f"; int8 calibrated on {run['calibration']}"
                     if 'calibration' in run else '') + '.', '',
                  '| model | ms / image (median) | IQR ms | speed / '
                  f"{run['scope']} fp32 eager | "
                  + ('detections |' if run['scope'] == 'mmdet'
                     else 'pixels |'),
                  '|---|---|---|---|---|']
        for name, m in run['models'].items():
            lat = m['latency']
            lines.append(f"| {name} | {lat['median_s'] * 1000:.0f} | "
                         f"{lat['q1_s'] * 1000:.0f}-{lat['q3_s'] * 1000:.0f}"
                         f" | {_speedup(run, name):.2f} | {m['outputs']} |")
        if run.get('profile'):
            lines += ['', 'Where the time goes (one image, median of '
                      f"{cfg['repeats']}):", '']
            lines += profile_table(run['profile'], run['scope'])
        lines.append('')
    lines += slow_precision_notes(result['slow_here'])
    return lines


def quick_defaults(args: argparse.Namespace) -> None:
    """``--quick``: no warm-up, 2 repeats, 2 calibration images (in place);
    with a toy config it runs in a minute on a CPU."""
    if args.quick:
        args.warmup, args.repeats = 0, min(args.repeats, 2)
        args.calib_images = min(args.calib_images, 2)
