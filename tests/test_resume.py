"""``--resume`` under torch >= 2.6: mmengine checkpoints load with weights_only."""
import os.path as osp
import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from mmengine.hooks import Hook
from mmengine.logging import HistoryBuffer
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch import nn

import resnest_mm  # noqa: F401  (allow-lists mmengine's checkpoint types)


class ToyModel(BaseModel):

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(2, 1)

    def forward(self, inputs, labels, mode='tensor'):
        loss = (self.linear(inputs).squeeze(1) - labels).square().mean()
        return dict(loss=loss) if mode == 'loss' else loss


class ToyDataset(torch.utils.data.Dataset):
    metainfo = dict(classes=('a', 'b'))

    def __len__(self):
        return 16

    def __getitem__(self, i):
        x = torch.tensor([float(i), 1.0])
        return dict(inputs=x, labels=x.sum())


class InterruptAfter(Hook):
    """Stops training like Ctrl-C would, after iteration ``after``."""

    def __init__(self, after):
        self.after = after

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        if runner.iter + 1 == self.after:
            raise KeyboardInterrupt


def _runner(work_dir, resume, hooks=()):
    return Runner(
        model=ToyModel(),
        work_dir=str(work_dir),
        train_dataloader=dict(
            dataset=ToyDataset(), sampler=dict(type='DefaultSampler',
                                               shuffle=True),
            batch_size=4, num_workers=0,
            collate_fn=dict(type='default_collate')),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01, momentum=0.9)),
        param_scheduler=dict(type='MultiStepLR', by_epoch=False,
                             milestones=[3], gamma=0.5),
        train_cfg=dict(by_epoch=False, max_iters=6),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=2,
                                           by_epoch=False)),
        custom_hooks=list(hooks),
        resume=resume,
        randomness=dict(seed=0),
        experiment_name=f'resume_{resume}',
    )


def test_interrupted_training_resumes_from_the_saved_iteration(tmp_path):
    try:
        _runner(tmp_path, False, [InterruptAfter(3)]).train()
    except KeyboardInterrupt:
        pass
    assert osp.exists(tmp_path / 'iter_2.pth')
    assert not osp.exists(tmp_path / 'iter_4.pth')
    saved = torch.load(tmp_path / 'iter_2.pth', weights_only=True)
    assert saved['meta']['iter'] == 2

    runner = _runner(tmp_path, True)
    runner.train()
    assert runner.iter == 6
    resumed = torch.load(tmp_path / 'iter_6.pth', weights_only=True)
    assert resumed['meta']['iter'] == 6
    # resumed scheduler state: the milestone at iter 3 was applied once
    lr = resumed['optimizer']['param_groups'][0]['lr']
    assert abs(lr - 0.005) < 1e-9
    assert osp.exists(tmp_path / 'iter_2.pth')  # nothing already written lost


class _Lookup:
    """Pickles as ``getattr(owner, name)``, like a crafted checkpoint would."""

    def __init__(self, owner, name):
        self.owner, self.name = owner, name

    def __reduce__(self):
        return getattr, (self.owner, self.name)


def test_getattr_resolves_only_history_buffer_statistics(tmp_path):
    path = tmp_path / 'ok.pth'
    torch.save({'m': _Lookup(HistoryBuffer, 'mean')}, path)
    assert torch.load(path, weights_only=True)['m'] is HistoryBuffer.mean
    for owner, name in ((HistoryBuffer, '__init__'), (np.ndarray, 'tofile'),
                        (HistoryBuffer, '__class__')):
        torch.save({'m': _Lookup(owner, name)}, path)
        with pytest.raises(pickle.UnpicklingError, match='is refused'):
            torch.load(path, weights_only=True)


def _load_in_fresh_interpreter(path, import_first):
    """``torch.load`` in a new process: no HistoryBuffer exists there yet."""
    code = textwrap.dedent(f'''
        {'import resnest_mm' if import_first else ''}
        import torch
        try:
            torch.load({str(path)!r})
            print('LOADED')
        except Exception as e:
            print('REJECTED', type(e).__name__, e)
    ''')
    return subprocess.run([sys.executable, '-c', code], capture_output=True,
                          text=True, check=True).stdout


@pytest.fixture(scope='module')
def interrupted_checkpoint(tmp_path_factory):
    """The checkpoint a run interrupted in its third iteration left."""
    work_dir = tmp_path_factory.mktemp('interrupted')
    try:
        _runner(work_dir, False, [InterruptAfter(3)]).train()
    except KeyboardInterrupt:
        pass
    return work_dir / 'iter_2.pth'


def test_runner_checkpoint_loads_in_a_fresh_process(interrupted_checkpoint):
    """What --resume does in a new run, before any HistoryBuffer exists."""
    out = _load_in_fresh_interpreter(interrupted_checkpoint, True)
    assert out.startswith('LOADED'), out


def test_without_the_allow_list_resume_fails(interrupted_checkpoint):
    """The failure this module fixes, reproduced in a clean interpreter:
    torch's weights_only unpickler refuses the MessageHub's HistoryBuffer
    (not any error: a missing file or a broken pickle fails too)."""
    out = _load_in_fresh_interpreter(interrupted_checkpoint, False)
    assert out.startswith('REJECTED UnpicklingError Weights only load '
                          'failed.'), out
    assert ('Unsupported global: GLOBAL mmengine.logging.history_buffer.'
            'HistoryBuffer was not an allowed global by default') in out, out


def test_a_torch_without_safe_globals_is_named(monkeypatch):
    # setup.py requires no torch (pip must not replace a user's), so an old
    # one reaches the import: it must say which torch it found
    from resnest_mm.checkpoint_types import allow_mmengine_checkpoint_types
    monkeypatch.delattr(torch.serialization, 'add_safe_globals')
    with pytest.raises(ImportError, match=(
            r'needs torch >= 2\.4 .*; torch '
            f'{torch.__version__.replace("+", "[+]")} is installed')):
        allow_mmengine_checkpoint_types()
