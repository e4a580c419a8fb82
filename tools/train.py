"""Train a detector, segmentor or classifier from an mmdet, mmseg or
MMPretrain config.

    python tools/train.py configs/faster_rcnn_resnest50_fpn.py
    python tools/train.py CONFIG --work-dir work_dirs/x --resume
    bash tools/dist_train.sh CONFIG 8          # torchrun, --launcher pytorch

The config's ``default_scope`` (mmdet, mmseg or mmpretrain) decides the
task; the flags are those of the toolboxes' own ``tools/train.py``. Without
a GPU, ``--launcher pytorch`` runs on the gloo backend. A run whose loss
becomes NaN or infinite stops there with ``LossDivergedError``, which names
the broken terms and the likely fix (``resnest_mm.engine.invalid_loss``).
"""
import argparse
from typing import List, Optional

from mmengine.runner import Runner

import resnest_mm  # noqa: F401  (registers ResNeSt)
from resnest_mm.engine.cli import build_runner, parse_run_args
from resnest_mm.engine.data_checks import (TRAIN_LOADERS, built_dataset,
                                           check_data_paths)
from resnest_mm.engine.model_checks import check_classifier_channels
from resnest_mm.engine.run_config import (add_invalid_loss_check,
                                          apply_train_flags, load_run_config)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='where logs and checkpoints go')
    parser.add_argument('--resume', nargs='?', const='auto', default=None,
                        metavar='CKPT',
                        help='resume from CKPT, or without a value from the '
                        "work dir's latest checkpoint")
    parser.add_argument('--amp', action='store_true',
                        help='automatic mixed precision')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale the LR by total batch / base_batch_size')
    return parse_run_args(parser, argv)


def main(argv: Optional[List[str]] = None) -> Runner:
    args = parse_args(argv)
    cfg = load_run_config(args.config, args.cfg_options, args.work_dir,
                          args.launcher)
    check_classifier_channels(cfg)
    apply_train_flags(cfg, args.amp, args.auto_scale_lr, args.resume)
    add_invalid_loss_check(cfg)
    check_data_paths(cfg, TRAIN_LOADERS)
    runner = build_runner(cfg)
    built_dataset(runner, 'train_dataloader')
    runner.train()
    return runner


if __name__ == '__main__':
    main()
