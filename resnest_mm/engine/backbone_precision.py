"""Test a trained detector or segmentor with its backbone in bf16 or int8.

``tools/test.py --backbone-precision int8`` adds :class:`BackbonePrecisionHook`
to the config's ``custom_hooks``. Before the test loop (after the checkpoint
is loaded) the hook swaps the model's ResNeSt for its low-precision twin
(:func:`resnest_mm.deployment.low_precision.low_precision_backbone`): neck,
head, post-processing and the config's evaluator stay as they are, so the
metrics printed are the model's with only the backbone's arithmetic changed.

int8 calibrates on ``calib_images`` images of the ``train_dataloader``
(a train set that is the test or val set is refused) passed through the
model's own data preprocessor; the quantized file is written to the work dir.
"""
from typing import List, Optional

import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.runner import Runner
from torch import Tensor, nn

from resnest_mm.deployment.low_precision import (check_precision,
                                                 low_precision_backbone,
                                                 slow_precision_warning)
from resnest_mm.deployment.shipping import check_calibration_source
from resnest_mm.models import ResNeSt


def owner_of_backbone(model: nn.Module) -> nn.Module:
    """The detector or segmentor (possibly inside a TTA wrapper) whose
    ``backbone`` is our ResNeSt; ValueError if there is none."""
    if is_model_wrapper(model):
        model = model.module
    for module in model.modules():
        if isinstance(getattr(module, 'backbone', None), ResNeSt):
            return module
    backbone = getattr(getattr(model, 'module', model), 'backbone', None)
    raise ValueError('--backbone-precision needs a model whose backbone is '
                     "type='ResNeSt' (resnest_mm); this model's is "
                     f'{type(backbone).__name__}')


def calibration_batches(runner: Runner, owner: nn.Module, images: int,
                        loader: str = 'train_dataloader') -> List[Tensor]:
    """The first ``images`` images of the config's ``loader``, as the
    backbone sees them: ``(B, 3, H, W)`` batches from the data preprocessor
    (normalised, padded; no batch augmentation). A loader that reads the
    test or val images is refused
    (:func:`~resnest_mm.deployment.shipping.check_calibration_source`)."""
    check_calibration_source(runner.cfg, loader)
    cfg = runner.cfg.get(loader)
    batches, seen = [], 0
    with torch.no_grad():
        for data in Runner.build_dataloader(cfg, seed=0):
            batch = owner.data_preprocessor(data, False)['inputs']
            batches.append(batch[:images - seen])
            seen += len(batches[-1])
            if seen >= images:
                break
    return batches


class BackbonePrecisionHook(Hook):
    """Run the test loop with the model's ResNeSt backbone in ``precision``.

    Args:
        precision: ``'fp32'`` (deploy mode: folded BN), ``'bf16'`` or
            ``'int8'`` (see :mod:`resnest_mm.deployment.low_precision`).
        calib_images: int8 only: calibration images from the
            ``train_dataloader``.
        compile: bf16 only: ``torch.compile`` the backbone.
    """

    priority = 'LOW'  # after the checkpoint and the other hooks' set-up

    def __init__(self, precision: str = 'int8', calib_images: int = 32,
                 compile: bool = False) -> None:
        check_precision(precision)
        if calib_images < 1:
            raise ValueError(f'calib_images={calib_images}: int8 needs at '
                             'least one calibration image')
        self.precision = precision
        self.calib_images = calib_images
        self.compile = compile

    def before_test(self, runner: Runner) -> None:
        owner = owner_of_backbone(runner.model)
        calibration: Optional[List[Tensor]] = None
        if self.precision == 'int8':
            calibration = calibration_batches(runner, owner,
                                              self.calib_images)
        owner.backbone = low_precision_backbone(
            owner.backbone, self.precision, runner.work_dir,
            calibration or (), compile=self.compile)
        runner.logger.info(
            f'backbone in {self.precision} for this test '
            f'({type(owner.backbone).__name__})')
        slow = slow_precision_warning(self.precision)
        if slow:
            runner.logger.warning(slow)
