"""A diverged run stops at its first NaN or infinite loss and says why
(``resnest_mm.engine.invalid_loss``, added to every run by tools/train.py).

The hook on a stand-in runner, in a real mmengine Runner (which checkpoints
exist afterwards), and through ``tools/train.py`` on toy detection data, and
on toy segmentation data with mmdet hidden.
"""
import argparse
import inspect
import math
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from mmengine.config import Config, DictAction
from mmengine.hooks import Hook
from mmengine.model import BaseModel
from mmengine.registry import HOOKS, DefaultScope
from mmengine.runner import Runner
from torch import nn

import resnest_mm  # noqa: F401  (registers StopOnInvalidLossHook)
from resnest_mm.engine.invalid_loss import (LossDivergedError,
                                            StopOnInvalidLossHook)
from resnest_mm.engine.run_config import add_invalid_loss_check
from resnest_mm.toy_data import make_toy_ade20k, make_toy_coco
from toy_runs import REPO, TOY_FASTER, run_tool

NAN, INF = float('nan'), float('inf')


class _Loader(list):
    """A train dataloader's length and batch size, as mmdet builds it: an
    ``AspectRatioBatchSampler`` holds the batch size, the loader None."""

    def __init__(self, batches, batch_size):
        super().__init__(range(batches))
        self.batch_size = None
        self.batch_sampler = SimpleNamespace(batch_size=batch_size)


def _fake_runner(batch_size=1, world_size=1, iteration=50, epoch=0,
                 clip_grad=None, auto_scale_lr=None):
    """Epoch 1 of the toy detector at batch 1: 160 batches, lr 0.02 tuned for
    a total batch of 8, in warm-up at 0.0196 now."""
    optim = dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.02))
    if clip_grad:
        optim['clip_grad'] = clip_grad
    errors = []
    return SimpleNamespace(
        iter=iteration, epoch=epoch, world_size=world_size,
        train_loop=SimpleNamespace(dataloader=_Loader(160, batch_size)),
        cfg=Config(dict(optim_wrapper=optim)),
        auto_scale_lr=auto_scale_lr or dict(enable=False, base_batch_size=8),
        optim_wrapper=SimpleNamespace(get_lr=lambda: {'lr': [0.0196]}),
        logger=SimpleNamespace(error=errors.append), errors=errors)


def _losses(**values):
    return {k: torch.tensor(v) for k, v in values.items()}


def _diverged(hook, runner, outputs, batch_idx=50) -> str:
    with pytest.raises(LossDivergedError) as info:
        hook.after_train_iter(runner, batch_idx, outputs=outputs)
    assert isinstance(info.value, FloatingPointError)
    assert runner.errors == [str(info.value)]  # in the log file too
    return str(info.value)


def test_finite_losses_and_nan_accuracy_pass():
    hook, runner = StopOnInvalidLossHook(), _fake_runner()
    hook.after_train_iter(runner, 50, outputs=_losses(
        loss_cls=0.7, loss_bbox=0.2, loss=0.9, acc=NAN))
    hook.after_train_iter(runner, 50, outputs=None)
    assert runner.errors == []


def test_nan_term_stops_with_iteration_terms_lr_batch_and_fixes():
    message = _diverged(StopOnInvalidLossHook(), _fake_runner(), _losses(
        loss_rpn_cls=0.5, loss_bbox=NAN, loss_cls=INF, loss=NAN))
    assert 'iteration 51 (epoch 1, batch 51/160)' in message
    assert 'loss_bbox=nan, loss_cls=inf, loss=nan.' in message
    assert 'loss_rpn_cls' not in message
    assert 'Learning rate now: 0.0196 (optim_wrapper.optimizer.lr 0.02)' \
        in message
    assert 'batch size 1 per GPU x 1 GPU(s) = 1' in message
    assert 'add --auto-scale-lr to scale it to 0.0025' in message
    assert '--cfg-options optim_wrapper.optimizer.lr=0.002' in message
    assert '--cfg-options optim_wrapper.clip_grad.max_norm=35' in message
    assert 'with the learning rate stored in it' in message  # on --resume


def test_fixes_offered_depend_on_the_config():
    outputs = _losses(loss=NAN)
    # 4 per GPU x 2 GPUs = the 8 the LR was tuned for
    message = _diverged(StopOnInvalidLossHook(),
                        _fake_runner(batch_size=4, world_size=2), outputs)
    assert 'batch size 4 per GPU x 2 GPU(s) = 8' in message
    assert '--auto-scale-lr' not in message
    message = _diverged(StopOnInvalidLossHook(), _fake_runner(
        auto_scale_lr=dict(enable=True, base_batch_size=8)), outputs)
    assert '--auto-scale-lr' not in message
    message = _diverged(StopOnInvalidLossHook(),
                        _fake_runner(clip_grad=dict(max_norm=10)), outputs)
    assert 'clip_grad' not in message
    assert 'optim_wrapper.optimizer.lr=0.002' in message


@pytest.mark.parametrize('config', [
    'toy/faster_rcnn_resnest14_fpn_toy.py',  # no clip_grad key
    'deeplabv3_resnest50_d8_ade20k.py',  # clip_grad=None from mmseg
])
def test_suggested_options_apply_to_the_config(config):
    """Each ``--cfg-options`` the message suggests is accepted and does it."""
    cfg = Config.fromfile(REPO / 'configs' / config)
    lr = cfg.optim_wrapper.optimizer.lr
    runner = _fake_runner()
    runner.cfg = cfg
    message = _diverged(StopOnInvalidLossHook(), runner, _losses(loss=NAN))
    suggested = re.findall(r'--cfg-options (.*)', message)
    assert len(suggested) == 2, message
    parser = argparse.ArgumentParser()
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    for options in suggested:
        cfg.merge_from_dict(parser.parse_args(
            ['--cfg-options', *options.split()]).cfg_options)
    assert cfg.optim_wrapper.optimizer.lr == pytest.approx(lr / 10)
    assert cfg.optim_wrapper.clip_grad == dict(max_norm=35)


def test_interval_skips_iterations_between_checks():
    hook = StopOnInvalidLossHook(interval=5)
    hook.after_train_iter(_fake_runner(iteration=48), 48,
                          outputs=_losses(loss=NAN))  # iteration 49
    _diverged(hook, _fake_runner(iteration=49), _losses(loss=NAN), 49)


@pytest.mark.parametrize('interval', [0, -1, 2.0, True])
def test_interval_must_be_a_positive_int(interval):
    with pytest.raises(ValueError, match=rf'interval={interval!r}'):
        StopOnInvalidLossHook(interval=interval)


def test_checkpoint_with_non_finite_weights_is_refused():
    hook, runner = StopOnInvalidLossHook(), _fake_runner()
    state = {'conv.weight': torch.ones(2, 2),
             'bn.num_batches_tracked': torch.tensor(3)}
    hook.before_save_checkpoint(runner, dict(meta=dict(iter=50),
                                             state_dict=state))
    state['fc.bias'] = torch.tensor([0.0, INF])
    with pytest.raises(LossDivergedError, match=r'weights after iteration '
                       r'50 hold NaN or infinite values in 1 tensor\(s\) '
                       r'\(fc\.bias\); the checkpoint is not written'):
        hook.before_save_checkpoint(runner, dict(meta=dict(iter=50),
                                                 state_dict=state))


@pytest.mark.parametrize('scope', ['mmdet', 'mmseg'])
def test_configs_of_either_toolbox_build_the_hook(scope):
    with DefaultScope.overwrite_default_scope(scope):
        hook = HOOKS.build(dict(type='StopOnInvalidLossHook', interval=3))
    assert isinstance(hook, StopOnInvalidLossHook) and hook.interval == 3
    from mmdet.engine.hooks import CheckInvalidLossHook
    assert isinstance(hook, CheckInvalidLossHook)  # with mmdet: builds on it


def test_tools_add_the_hook_once():
    cfg = Config(dict(custom_hooks=[dict(type='EMAHook')]))
    add_invalid_loss_check(cfg)
    add_invalid_loss_check(cfg)  # e.g. a config dumped by an earlier run
    assert [h['type'] for h in cfg.custom_hooks] == [
        'EMAHook', 'StopOnInvalidLossHook']
    cfg = Config(dict())
    add_invalid_loss_check(cfg)
    assert cfg.custom_hooks == [dict(type='StopOnInvalidLossHook')]
    # mmdet's own check is upgraded in place, its interval kept
    cfg = Config(dict(custom_hooks=[
        dict(type='mmdet.CheckInvalidLossHook', interval=10)]))
    add_invalid_loss_check(cfg)
    assert cfg.custom_hooks == [
        dict(type='StopOnInvalidLossHook', interval=10)]


# -- in a real mmengine Runner ----------------------------------------------

class NanFrom(BaseModel):
    """Regression on 2 numbers whose loss is NaN from training step
    ``nan_from`` (1-based) on, whatever the data."""

    def __init__(self, nan_from):
        super().__init__()
        self.linear = nn.Linear(2, 1)
        self.nan_from, self.steps = nan_from, 0

    def forward(self, inputs, labels, mode='tensor'):
        error = (self.linear(inputs).squeeze(1) - labels).square().mean()
        if mode != 'loss':
            return error
        self.steps += 1
        if self.steps >= self.nan_from:
            error = error * NAN
        return dict(loss_mse=error, acc=torch.tensor(1.0))


class Points(torch.utils.data.Dataset):
    metainfo = dict(classes=('a', ))

    def __len__(self):
        return 16

    def __getitem__(self, i):
        x = torch.tensor([i / 16, 1.0])
        return dict(inputs=x, labels=x.sum())


class SpoilWeightAt(Hook):
    """Makes a weight NaN after iteration ``at`` (finite loss there)."""

    def __init__(self, at):
        self.at = at

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        if runner.iter + 1 == self.at:
            with torch.no_grad():
                runner.model.linear.bias.fill_(NAN)


def _train(work_dir, model, by_epoch, extra_hooks=()):
    """batch 4 of 16 samples: 4 iterations an epoch, 3 epochs or 12 iterations;
    a checkpoint every 2 epochs or iterations."""
    loop = dict(by_epoch=True, max_epochs=3) if by_epoch else dict(
        by_epoch=False, max_iters=12)
    runner = Runner(
        model=model, work_dir=str(work_dir),
        train_dataloader=dict(
            dataset=Points(), batch_size=4, num_workers=0,
            sampler=dict(type='DefaultSampler', shuffle=False),
            collate_fn=dict(type='default_collate')),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        train_cfg=loop,
        default_hooks=dict(checkpoint=dict(
            type='CheckpointHook', interval=2, by_epoch=by_epoch)),
        custom_hooks=[dict(type='StopOnInvalidLossHook'), *extra_hooks],
        experiment_name=f'nan_{by_epoch}_{len(extra_hooks)}')
    with pytest.raises(LossDivergedError) as info:
        runner.train()
    return str(info.value), sorted(p.name for p in work_dir.glob('*.pth'))


def test_runner_stops_at_the_first_nan_loss_before_checkpointing(tmp_path):
    # iteration 8 is a checkpoint iteration: the loss check comes first
    message, saved = _train(tmp_path / 'iters', NanFrom(8), by_epoch=False)
    assert 'diverged at iteration 8/12: non-finite loss terms loss=nan, ' \
        'loss_mse=nan.' in message
    assert 'batch size 4 per GPU x 1 GPU(s) = 4' in message
    assert saved == ['iter_2.pth', 'iter_4.pth', 'iter_6.pth']
    # the last iteration of epoch 2, whose checkpoint is never written
    message, saved = _train(tmp_path / 'epochs', NanFrom(8), by_epoch=True)
    assert 'diverged at iteration 8 (epoch 2, batch 4/4)' in message
    assert saved == []


def test_runner_refuses_a_checkpoint_with_nan_weights(tmp_path):
    message, saved = _train(tmp_path, NanFrom(100), by_epoch=False,
                            extra_hooks=[SpoilWeightAt(4)])
    assert 'the weights after iteration 4 hold NaN or infinite values in 1 ' \
        'tensor(s) (linear.bias)' in message
    assert saved == ['iter_2.pth']


# -- through tools/train.py ---------------------------------------------------

#: 4 toy images of 64 px at batch 2: 2 iterations an epoch. Epoch 1 trains at
#: the warm-up LR (~2e-4); epoch 2's step schedule multiplies it by 1e14.
DET_OPTIONS = [
    '--cfg-options', 'train_dataloader.batch_size=2',
    'train_dataloader.dataset.pipeline.2.scale=(64,64)',
    'train_cfg.max_epochs=2', 'default_hooks.checkpoint.interval=1',
    'default_hooks.logger.interval=1', 'param_scheduler.1.milestones=[1]',
    'param_scheduler.1.gamma=1e14']
DET_REPORT = re.compile(r'LossDivergedError: Training diverged at iteration '
                        r'(\d+) \(epoch (\d+), batch \d/2\): non-finite '
                        r'loss terms (.*)\.')


def _logged_losses(output: str):
    """The total loss of every training iteration the log shows."""
    return [float(loss) for loss in re.findall(
        r'(?:Epoch|Iter)\(train\) .*? loss: (\S+)', output)]


def _stopped_at_first_nan(proc, iteration: int) -> None:
    """Each iteration before ``iteration`` was logged with a finite loss."""
    logged = _logged_losses(proc.stdout)
    assert len(logged) == iteration - 1, logged
    assert all(math.isfinite(loss) for loss in logged), logged


def _checkpoints(work_dir: Path):
    return sorted(p.name for p in work_dir.glob('*.pth'))


@pytest.fixture(scope='module')
def diverged_det(tmp_path_factory):
    """The toy Faster R-CNN trained until its LR blows it up."""
    root = tmp_path_factory.mktemp('diverge_det')
    make_toy_coco(root / 'data/toy_coco', {'train2017': 4, 'val2017': 2})
    proc = run_tool('train.py', [TOY_FASTER, '--work-dir', root / 'wd',
                                 *DET_OPTIONS], cwd=root, check=False)
    return root, proc


def test_train_tool_stops_a_diverged_run(diverged_det):
    root, proc = diverged_det
    assert proc.returncode != 0
    assert 'AssertionError' not in proc.stderr
    report = DET_REPORT.search(proc.stderr)
    assert report, proc.stderr[-3000:]
    iteration, epoch = int(report[1]), int(report[2])
    assert epoch == 2, 'diverged during the sane first epoch'
    assert re.fullmatch(r'loss=nan(, loss_\w+=(nan|-?inf))+', report[3]), \
        report[3]
    assert 'batch size 2 per GPU x 1 GPU(s) = 2' in proc.stderr
    assert '--auto-scale-lr to scale it to 0.005' in proc.stderr
    _stopped_at_first_nan(proc, iteration)
    # epoch 1's checkpoint, sound; none from the diverged epoch
    assert _checkpoints(root / 'wd') == ['epoch_1.pth']
    saved = torch.load(root / 'wd/epoch_1.pth', weights_only=True)
    assert all(t.isfinite().all() for t in saved['state_dict'].values())


def test_resume_from_the_last_good_checkpoint(diverged_det):
    root, _ = diverged_det
    resumed = run_tool('train.py', [TOY_FASTER, '--work-dir', root / 'wd',
                                    '--resume', *DET_OPTIONS],
                       cwd=root, check=False)
    assert 'resumed epoch: 1, iter: 2' in resumed.stdout, \
        resumed.stderr[-3000:]
    # the checkpoint holds epoch 2's LR: it diverges again, in epoch 2,
    # and writes nothing
    report = DET_REPORT.search(resumed.stderr)
    assert resumed.returncode != 0 and report, resumed.stderr[-3000:]
    assert int(report[2]) == 2
    assert _checkpoints(root / 'wd') == ['epoch_1.pth']


class _NoMMDet:
    """Import finder for which mmdet is not installed."""

    @staticmethod
    def find_spec(name, path=None, target=None):
        if name.split('.')[0] == 'mmdet':
            raise ModuleNotFoundError(f'No module named {name!r}', name=name)


#: Runs tools/train.py (argv[1:]) as ``__main__`` with mmdet uninstalled.
_WITHOUT_MMDET = inspect.getsource(_NoMMDet) + """
import runpy, sys
sys.meta_path.insert(0, _NoMMDet)
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name='__main__')
"""


def test_segmentation_run_without_mmdet_stops(tmp_path):
    make_toy_ade20k(tmp_path / 'data/toy_ade20k',
                    {'training': 4, 'validation': 2})
    proc = subprocess.run([
        sys.executable, '-c', _WITHOUT_MMDET, REPO / 'tools/train.py',
        REPO / 'configs/toy/deeplabv3_resnest14_d8_toy.py',
        '--work-dir', tmp_path / 'wd', '--cfg-options',
        'train_dataloader.batch_size=2', 'train_cfg.max_iters=4',
        'default_hooks.logger.interval=1', 'optim_wrapper.optimizer.lr=1e12'],
        cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode != 0
    assert 'ModuleNotFoundError' not in proc.stderr, proc.stderr[-3000:]
    report = re.search(r'LossDivergedError: Training diverged at iteration '
                       r'(\d)/4: non-finite loss terms loss=nan, (.*)\.',
                       proc.stderr)
    assert report, proc.stderr[-3000:]
    assert 'decode.loss_ce=nan' in report[2]
    assert 'batch size 2 per GPU x 1 GPU(s) = 2' in proc.stderr
    _stopped_at_first_nan(proc, int(report[1]))
