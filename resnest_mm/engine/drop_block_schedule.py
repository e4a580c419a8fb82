"""Raise the DropBlock rate linearly over training, as ResNeSt's ImageNet
recipe does.

The official training code (``DropBlockScheduler`` in ResNeSt's Gluon
``dropblock.py``, called at the start of every epoch) sets every DropBlock's
rate to ``end_prob * (epoch + 1) / max_epochs``: 0.1/270 in the first of 270
epochs, 0.1 in the last. :class:`DropBlockScheduleHook` does the same for the
:class:`~resnest_mm.models.drop_block.DropBlock2d` layers a backbone built
with ``drop_block=dict(prob=..., block_size=...)`` holds (the layers start at
that ``prob``; the hook overrides it from the first epoch on).
"""
from typing import List, Optional

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.runner import EpochBasedTrainLoop, Runner
from torch import nn

from resnest_mm.models.drop_block import DropBlock2d


def drop_blocks(model: nn.Module) -> List[DropBlock2d]:
    """Every DropBlock layer of ``model`` (unwrapped from DDP)."""
    if is_model_wrapper(model):
        model = model.module
    return [m for m in model.modules() if isinstance(m, DropBlock2d)]


class DropBlockScheduleHook(Hook):
    """Set every DropBlock's ``prob`` to ``end_prob * (epoch + 1) /
    max_epochs`` before each training epoch (epoch counted from 0).

    Args:
        end_prob: The rate of the last epoch, in ``[0, 1)`` (official: 0.1).
    """

    priority = 'NORMAL'

    def __init__(self, end_prob: float = 0.1) -> None:
        if not 0.0 <= end_prob < 1.0:
            raise ValueError(f'end_prob={end_prob!r} must be in [0, 1), as '
                             "DropBlock's prob")
        self.end_prob = end_prob
        self.prob: Optional[float] = None

    def before_train(self, runner: Runner) -> None:
        if not isinstance(runner.train_loop, EpochBasedTrainLoop):
            raise ValueError(
                'DropBlockScheduleHook raises the rate per epoch: it needs '
                "train_cfg=dict(by_epoch=True, ...), not "
                f'{type(runner.train_loop).__name__}')
        if not drop_blocks(runner.model):
            raise ValueError(
                'DropBlockScheduleHook found no DropBlock layer: build the '
                'ResNeSt backbone with drop_block=dict(prob=0.1, '
                'block_size=3)')

    def before_train_epoch(self, runner: Runner) -> None:
        self.prob = self.end_prob * (runner.epoch + 1) / runner.max_epochs
        for layer in drop_blocks(runner.model):
            layer.prob = self.prob
        runner.message_hub.update_scalar('train/drop_block_prob', self.prob)
