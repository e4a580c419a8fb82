"""Turn a config file plus command-line flags into the config a Runner gets.

``tools/train.py`` and ``tools/test.py`` serve detection, segmentation and
classification configs alike; the few places where mmdet, mmseg and
MMPretrain differ (how results are dumped, where visualisations go) are
looked up from the config's ``default_scope`` here.
"""
import atexit
import os
import os.path as osp
from typing import Dict, Optional

import torch
from mmengine.config import Config

from resnest_mm.engine.invalid_loss import StopOnInvalidLossHook

#: ``default_scope`` values the tools accept.
TASK_SCOPES = ('mmdet', 'mmseg', 'mmpretrain')


def read_config(config: str, cfg_options: Optional[Dict] = None) -> Config:
    """``config`` with ``--cfg-options`` merged; a missing file is named
    with an example path (the one place the tools read a config file)."""
    if not osp.isfile(config):
        raise FileNotFoundError(
            f'config file {config!r} does not exist; pass a path such as '
            'configs/faster_rcnn_resnest50_fpn.py')
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    return cfg


def load_run_config(config: str, cfg_options: Optional[Dict] = None,
                    work_dir: Optional[str] = None,
                    launcher: str = 'none') -> Config:
    """Read ``config``, apply ``--cfg-options``, ``--work-dir``, ``--launcher``.

    The work dir follows mmdet/mmseg: the flag, else the config's
    ``work_dir``, else ``./work_dirs/<config name>``.
    """
    cfg = read_config(config, cfg_options)
    cfg.launcher = launcher
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(config))[0])
    task_of(cfg)
    return cfg


def task_of(cfg: Config) -> str:
    """One of :data:`TASK_SCOPES`: which toolbox the config belongs to."""
    scope = cfg.get('default_scope')
    if scope not in TASK_SCOPES:
        raise ValueError(
            f'default_scope={scope!r} in the config; these tools run '
            f'detection, segmentation or classification configs, '
            f'default_scope one of {TASK_SCOPES} (inherit from an mmdet::, '
            'mmseg:: or mmpretrain:: base config)')
    return scope


def apply_train_flags(cfg: Config, amp: bool = False,
                      auto_scale_lr: bool = False,
                      resume: Optional[str] = None) -> None:
    """``--amp``, ``--auto-scale-lr`` and ``--resume [CKPT]``, in place.

    ``resume='auto'`` continues from the work dir's latest checkpoint (a
    fresh start when there is none); a path resumes from that checkpoint.
    """
    if amp:
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    if auto_scale_lr:
        if 'base_batch_size' not in cfg.get('auto_scale_lr', {}):
            raise ValueError(
                '--auto-scale-lr needs auto_scale_lr=dict(enable=False, '
                'base_batch_size=N) in the config (N: the total batch size '
                'the learning rate was tuned for)')
        cfg.auto_scale_lr.enable = True
    if resume == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif resume is not None:
        if not osp.isfile(resume):
            raise FileNotFoundError(
                f'--resume {resume!r}: no such checkpoint file; give an '
                'existing .pth, or --resume alone for the work dir\'s latest')
        cfg.resume, cfg.load_from = True, resume


def add_invalid_loss_check(cfg: Config) -> None:
    """Stop the run at its first NaN or infinite loss, in place: add
    :class:`~resnest_mm.engine.invalid_loss.StopOnInvalidLossHook` to
    ``custom_hooks``.

    A config that lists the hook keeps its entry; one that lists mmdet's
    ``CheckInvalidLossHook`` gets ours in that entry's place (its
    ``interval`` kept), so the loss is never checked twice.
    """
    ours = StopOnInvalidLossHook.__name__
    hooks = list(cfg.get('custom_hooks') or [])
    for hook in hooks:
        kind = hook.get('type')
        kind = getattr(kind, '__name__', kind).split('.')[-1]
        if kind == ours:
            return
        if kind == 'CheckInvalidLossHook':
            hook['type'] = ours
            return
    cfg.custom_hooks = hooks + [dict(type=ours)]


def apply_test_flags(cfg: Config, checkpoint: str, out: Optional[str] = None,
                     show_dir: Optional[str] = None,
                     tta: bool = False) -> None:
    """``CHECKPOINT``, ``--out``, ``--show-dir`` and ``--tta``, in place.

    ``--out`` is handled after the Runner exists (see :func:`add_dump_metric`)
    for detection and classification; for segmentation it is the
    evaluator's ``output_dir``.
    """
    if not osp.isfile(checkpoint):
        raise FileNotFoundError(f'checkpoint {checkpoint!r} does not exist')
    cfg.load_from = checkpoint
    task = task_of(cfg)
    if show_dir is not None:
        hook = cfg.default_hooks.get('visualization')
        if hook is None:
            raise ValueError('--show-dir needs default_hooks.visualization '
                             'in the config')
        if task == 'mmpretrain':  # as MMPretrain's tools/test.py sets it
            hook.enable = True
            hook.interval = 1  # every image (the hook's default: 5000th)
            hook.out_dir = show_dir
        else:
            hook.draw = True
        if task == 'mmdet':
            hook.test_out_dir = show_dir
        elif task == 'mmseg':
            cfg.visualizer.save_dir = show_dir
    if out is not None and task == 'mmseg':
        cfg.test_evaluator.output_dir = out
        cfg.test_evaluator.keep_results = True
    if tta:
        missing = [k for k in ('tta_model', 'tta_pipeline') if k not in cfg]
        if missing:
            raise ValueError(f'--tta needs {missing} in the config (mmseg '
                             'base configs define both)')
        cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
        cfg.model = dict(cfg.tta_model, module=cfg.model)


def add_backbone_precision(cfg: Config, precision: Optional[str],
                           calib_images: int = 32) -> None:
    """``--backbone-precision``: test with the ResNeSt backbone in bf16 or
    int8, in place (adds
    :class:`~resnest_mm.engine.backbone_precision.BackbonePrecisionHook`)."""
    if precision is None:
        return
    cfg.custom_hooks = list(cfg.get('custom_hooks') or []) + [dict(
        type='BackbonePrecisionHook', precision=precision,
        calib_images=calib_images)]


def add_dump_metric(runner, cfg: Config, out: Optional[str]) -> None:
    """Detection and classification ``--out``: also dump the raw
    predictions to a pickle file (mmdet's ``DumpDetResults``, mmengine's
    ``DumpResults`` as MMPretrain's ``tools/test.py`` does)."""
    task = task_of(cfg)
    if out is None or task == 'mmseg':
        return
    if not out.endswith(('.pkl', '.pickle')):
        kind = 'detection' if task == 'mmdet' else 'classification'
        raise ValueError(f'--out {out!r}: {kind} results are dumped as a '
                         'pickle; use a .pkl path')
    if task == 'mmdet':
        from mmdet.evaluation import DumpDetResults
        metric = DumpDetResults(out_file_path=out)
    else:
        from mmengine.evaluator import DumpResults
        metric = DumpResults(out_file_path=out)
    runner.test_evaluator.metrics.append(metric)


def setup_cpu_distributed(cfg: Config) -> None:
    """Let ``--launcher pytorch`` run on machines without a GPU.

    mmengine's launcher calls ``torch.cuda.set_device`` and wraps the model in
    DDP with ``device_ids=[LOCAL_RANK]``, both of which fail on CPU. Without
    CUDA we start the process group ourselves on gloo (the Runner then skips
    its own init) and wrap without device ids. SyncBN works across processes
    on gloo only for CUDA tensors, so CPU configs should use BN.
    """
    if cfg.launcher == 'none' or torch.cuda.is_available():
        return
    if cfg.launcher != 'pytorch':
        raise ValueError(f'--launcher {cfg.launcher} without a GPU: only '
                         "'pytorch' (torchrun) is supported on CPU")
    import torch.distributed as dist
    if not dist.is_initialized():
        dist.init_process_group(backend='gloo')
        # ended before the interpreter tears down gloo's threads: left to
        # that teardown, a rank of the 2-process test once aborted after its
        # run had finished ("terminate called without an active exception")
        atexit.register(dist.destroy_process_group)
    wrapper = cfg.get('model_wrapper_cfg') or dict(
        type='MMDistributedDataParallel', broadcast_buffers=False,
        find_unused_parameters=cfg.get('find_unused_parameters', False))
    wrapper['device_ids'] = None
    cfg.model_wrapper_cfg = wrapper
    os.environ.setdefault('LOCAL_RANK', '0')
