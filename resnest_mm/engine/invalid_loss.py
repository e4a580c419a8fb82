"""Stop a diverged training run at once, and say why and what to change.

mmdet's ``CheckInvalidLossHook`` asserts ``isfinite(outputs['loss'])`` every
50 iterations: a bare ``AssertionError`` (none at all under ``python -O``);
without it a diverged run trains on NaNs to its end, saving NaN checkpoints.
:class:`StopOnInvalidLossHook` builds on it: it checks every iteration by
default (cheap: mmengine copies the losses to the host for logging anyway),
raises :class:`LossDivergedError` naming the iteration, the broken loss
terms, the learning rate, the batch size and the likely fixes, and refuses to
write a checkpoint whose weights are not finite. ``tools/train.py`` adds it
to every run (:func:`resnest_mm.engine.run_config.add_invalid_loss_check`).

It derives from mmdet's hook when mmdet is installed; on a segmentation-only
install (no mmdet) it derives from mmengine's ``Hook`` and works the same.
"""
import math
from typing import Any, Dict, Mapping, Optional

import torch
from mmengine.hooks import Hook
from mmengine.runner import IterBasedTrainLoop, Runner

try:
    from mmdet.engine.hooks import CheckInvalidLossHook as _MMDetLossCheck
except ModuleNotFoundError as err:
    if err.name != 'mmdet':  # installed but broken: say so
        raise
    _MMDetLossCheck = Hook

#: Gradient-clipping norm suggested when the config has none (what mmdet's
#: FCOS, RegNet and YOLOv3 recipes clip to).
SUGGESTED_MAX_NORM = 35


class LossDivergedError(FloatingPointError):
    """Training produced a NaN or infinite loss, or non-finite weights."""


def non_finite_terms(outputs: Mapping[str, Any]) -> Dict[str, float]:
    """``{name: value}`` of the entries of ``outputs`` (a model's
    ``log_vars``: scalar tensors or numbers) that are NaN or infinite."""
    broken = {}
    for name, value in outputs.items():
        value = torch.as_tensor(value, dtype=torch.float64).mean().item()
        if not math.isfinite(value):
            broken[name] = value
    return broken


def _position(runner: Runner, batch_idx: int) -> str:
    """``'iteration 51 (epoch 1, batch 51/160)'``, as the log counts."""
    if isinstance(runner.train_loop, IterBasedTrainLoop):
        return f'iteration {runner.iter + 1}/{runner.max_iters}'
    return (f'iteration {runner.iter + 1} (epoch {runner.epoch + 1}, batch '
            f'{batch_idx + 1}/{len(runner.train_loop.dataloader)})')


def _lr_text(runner: Runner) -> str:
    """The optimizer's current learning rate(s), e.g. ``'0.0196'``."""
    rates = sorted({lr for group in runner.optim_wrapper.get_lr().values()
                    for lr in group})
    return ', '.join(f'{lr:.4g}' for lr in rates)


def _batch_per_gpu(loader) -> int:
    """Samples per batch of ``loader``, also under a batch sampler (mmdet's
    ``AspectRatioBatchSampler``), where ``DataLoader.batch_size`` is None."""
    if loader.batch_size is not None:
        return loader.batch_size
    return loader.batch_sampler.batch_size


def divergence_report(runner: Runner, problem: str) -> str:
    """``problem`` followed by the run's learning rate and batch size and the
    fixes that apply to its config (``runner.cfg``, ``runner.auto_scale_lr``).
    """
    per_gpu = _batch_per_gpu(runner.train_loop.dataloader)
    total = per_gpu * runner.world_size
    optim_cfg = runner.cfg.get('optim_wrapper') or {}
    config_lr = (optim_cfg.get('optimizer') or {}).get('lr')
    configured = (f' (optim_wrapper.optimizer.lr {config_lr})'
                  if config_lr else '')
    lines = [
        problem,
        f'Learning rate now: {_lr_text(runner)}{configured}; batch size '
        f'{per_gpu} per GPU x {runner.world_size} GPU(s) = {total}.',
        'Likely fixes:',
    ]
    auto_scale = runner.auto_scale_lr or {}
    base = auto_scale.get('base_batch_size')
    if base and total != base and not auto_scale.get('enable', False):
        scaled = f' to {config_lr * total / base:.4g}' if config_lr else ''
        lines.append(
            f'  - the LR was tuned for a total batch of {base} '
            f'(auto_scale_lr.base_batch_size), this run has {total}: add '
            f'--auto-scale-lr to scale it{scaled}')
    lines.append('  - a lower LR' + (
        f': --cfg-options optim_wrapper.optimizer.lr={config_lr / 10:.4g}'
        if config_lr else ''))
    if not optim_cfg.get('clip_grad'):
        # over a `clip_grad=None` (mmseg's schedules) a dict needs _delete_
        reset = ('optim_wrapper.clip_grad._delete_=True '
                 if 'clip_grad' in optim_cfg else '')
        lines.append(f'  - gradient clipping: --cfg-options {reset}'
                     f'optim_wrapper.clip_grad.max_norm={SUGGESTED_MAX_NORM}')
    lines.append(
        'No checkpoint is written from this iteration on (those saved before '
        'are kept). --resume continues from the latest one with the learning '
        'rate stored in it: to train with a changed LR, start again.')
    return '\n'.join(lines)


class StopOnInvalidLossHook(_MMDetLossCheck):
    """Raise :class:`LossDivergedError` when a loss becomes NaN or infinite.

    Every ``interval`` training iterations the model's ``log_vars`` are read:
    a non-finite entry whose name contains ``'loss'`` (the terms mmengine
    sums into ``loss``, and ``loss`` itself) stops the run; the message lists
    every non-finite entry. It runs before EMA, logging and checkpoint hooks,
    so nothing is averaged, logged or saved from the broken iteration, and a
    checkpoint whose ``state_dict`` holds non-finite weights is refused too.

    Args:
        interval: check every ``interval`` iterations; 1 (the default) stops
            a diverged run at the first non-finite loss.
    """

    priority = 'VERY_HIGH'

    def __init__(self, interval: int = 1) -> None:
        if isinstance(interval, bool) or not isinstance(interval, int) \
                or interval < 1:
            raise ValueError(f'interval={interval!r}: the number of training '
                             'iterations between checks, a positive int')
        self.interval = interval

    def after_train_iter(self, runner: Runner, batch_idx: int,
                         data_batch: Any = None,
                         outputs: Optional[Mapping[str, Any]] = None) -> None:
        if not outputs or not self.every_n_train_iters(runner, self.interval):
            return
        broken = non_finite_terms(outputs)
        if any('loss' in name for name in broken):
            terms = ', '.join(f'{k}={v}' for k, v in broken.items())
            self._stop(runner, f'Training diverged at '
                       f'{_position(runner, batch_idx)}: non-finite loss '
                       f'terms {terms}.')

    def before_save_checkpoint(self, runner: Runner,
                               checkpoint: dict) -> None:
        broken = [name for name, value in checkpoint['state_dict'].items()
                  if isinstance(value, torch.Tensor)
                  and value.is_floating_point() and not value.isfinite().all()]
        if broken:
            shown = ', '.join(broken[:5]) + (', ...' if len(broken) > 5
                                              else '')
            self._stop(runner, 'Training diverged: the weights after '
                       f'iteration {checkpoint["meta"]["iter"]} hold NaN or '
                       f'infinite values in {len(broken)} tensor(s) '
                       f'({shown}); the checkpoint is not written.')

    @staticmethod
    def _stop(runner: Runner, problem: str) -> None:
        message = divergence_report(runner, problem)
        runner.logger.error(message)
        raise LossDivergedError(message)
