"""DropBlockScheduleHook: every DropBlock's rate is ``end_prob * (epoch + 1)
/ max_epochs`` in each training epoch, as ResNeSt's official script sets it,
and a run it cannot schedule is refused with the reason."""
import pytest
import torch
from mmengine.hooks import Hook
from mmengine.model import BaseModel
from mmengine.registry import HOOKS
from mmengine.runner import Runner
from torch.utils.data import Dataset

import resnest_mm  # noqa: F401  (registers the hook)
from resnest_mm.engine.drop_block_schedule import (DropBlockScheduleHook,
                                                   drop_blocks)
from resnest_mm.models import ResNeSt


class Images(Dataset):
    def __len__(self) -> int:
        return 4

    def __getitem__(self, index: int) -> dict:
        return dict(inputs=torch.randn(
            3, 32, 32, generator=torch.Generator().manual_seed(index)))


class TinyClassifier(BaseModel):
    def __init__(self, drop_block=dict(prob=0.05, block_size=3)) -> None:
        super().__init__()
        self.backbone = ResNeSt(depth=14, stem_channels=8, base_channels=4,
                                out_indices=(3, ), drop_block=drop_block)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        out = self.backbone(inputs)[0]
        if mode == 'loss':
            return dict(loss=out.square().mean())
        return out


class RecordProb(Hook):
    """Reads the layers' rate in the first iteration of each epoch (after
    the schedule hook's ``before_train_epoch``)."""
    priority = 'LOWEST'

    def __init__(self) -> None:
        self.seen = []

    def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
        if batch_idx == 0:
            self.seen.append({m.prob for m in drop_blocks(runner.model)})


def run(tmp_path, model, train_cfg, end_prob=0.1):
    record = RecordProb()
    runner = Runner(
        model=model, work_dir=str(tmp_path),
        train_dataloader=dict(dataset=Images(), batch_size=2,
                              sampler=dict(type='DefaultSampler',
                                           shuffle=False),
                              collate_fn=dict(type='default_collate')),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.0)),
        train_cfg=train_cfg,
        custom_hooks=[dict(type='DropBlockScheduleHook', end_prob=end_prob),
                      record],
        default_hooks=dict(checkpoint=None, logger=None),
        default_scope='mmengine', log_level='WARNING')
    runner.train()
    return record.seen


def test_rate_rises_linearly_to_the_end_prob(tmp_path):
    model = TinyClassifier()
    # the last two stages, one layer each (shared by the stage's blocks)
    assert len(drop_blocks(model)) == 2
    seen = run(tmp_path, model, dict(by_epoch=True, max_epochs=4))
    # one rate for every layer in each epoch: 0.1 * (epoch + 1) / 4
    assert [len(rates) for rates in seen] == [1, 1, 1, 1]
    assert [rates.pop() for rates in seen] == pytest.approx(
        [0.025, 0.05, 0.075, 0.1])


def test_registered_in_mmengine_hooks():
    assert HOOKS.get('DropBlockScheduleHook') is DropBlockScheduleHook


def test_iteration_based_run_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r'by_epoch=True.*IterBasedTrainLoop'):
        run(tmp_path, TinyClassifier(), dict(by_epoch=False, max_iters=2))


def test_backbone_without_drop_block_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r'no DropBlock layer: .*drop_block='
                       r'dict\(prob=0.1, block_size=3\)'):
        run(tmp_path, TinyClassifier(drop_block=None),
            dict(by_epoch=True, max_epochs=1))


@pytest.mark.parametrize('end_prob', [-0.1, 1.0])
def test_end_prob_outside_dropblock_range_is_refused(end_prob):
    with pytest.raises(ValueError, match=rf'end_prob={end_prob} must be in '
                       r'\[0, 1\)'):
        DropBlockScheduleHook(end_prob=end_prob)
