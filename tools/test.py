"""Evaluate a checkpoint of a detector, segmentor or classifier on its test set.

    python tools/test.py configs/faster_rcnn_resnest50_fpn.py CKPT
    python tools/test.py CONFIG CKPT --out results.pkl --show-dir vis
    python tools/test.py CONFIG CKPT --backbone-precision int8
    python tools/test.py CONFIG work_dirs/model_int8.onnx  # a shipped file
    bash tools/dist_test.sh CONFIG CKPT 8

Same flags as mmdet's and mmseg's ``tools/test.py``; the config's
``default_scope`` (mmdet, mmseg or mmpretrain) decides the task. ``--out``
dumps detection or classification predictions to a pickle, or segmentation
maps into a folder. ``--backbone-precision bf16`` or ``int8`` runs the
backbone (deploy mode) in that precision on the CPU and the rest in fp32 (see :mod:`resnest_mm.deployment.low_precision`).
A ``.onnx`` or ``.pt2`` file of ``tools/deployment/export_model.py`` in place
of the checkpoint is tested itself, in its own runtime and precision
(:class:`resnest_mm.deployment.deployed_model.DeployedModel`).
"""
import argparse
from typing import Dict, List, Optional

import resnest_mm  # noqa: F401  (registers ResNeSt)
from resnest_mm.deployment.deployed_model import (deployed_model_config,
                                                  is_shipped_file)
from resnest_mm.deployment.low_precision import PRECISIONS
from resnest_mm.engine.cli import build_runner, parse_run_args
from resnest_mm.engine.data_checks import (TEST_LOADERS, built_dataset,
                                           check_data_paths)
from resnest_mm.engine.model_checks import check_classifier_channels
from resnest_mm.engine.run_config import (add_backbone_precision,
                                          add_dump_metric, apply_test_flags,
                                          load_run_config)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file, or a shipped '
                        '.onnx / .pt2 model (tools/deployment/'
                        'export_model.py)')
    parser.add_argument('--work-dir', help='where the metrics are written')
    parser.add_argument('--out', help='dump predictions (detection, '
                        'classification: a .pkl file; segmentation: a '
                        'folder of label maps)')
    parser.add_argument('--show-dir', help='save drawn predictions here')
    parser.add_argument('--tta', action='store_true',
                        help="test-time augmentation (the config's "
                        'tta_model and tta_pipeline)')
    parser.add_argument('--backbone-precision', choices=PRECISIONS,
                        help='run the ResNeSt backbone in deploy mode in '
                        'this precision (int8: onnxruntime, calibrated on '
                        'train images)')
    parser.add_argument('--calib-images', type=int, default=32,
                        help='int8: calibration images from the '
                        'train_dataloader')
    return parse_run_args(parser, argv)


def main(argv: Optional[List[str]] = None) -> Dict[str, float]:
    """Run the test loop; return its metrics (e.g. ``coco/bbox_mAP``)."""
    args = parse_args(argv)
    cfg = load_run_config(args.config, args.cfg_options, args.work_dir,
                          args.launcher)
    check_classifier_channels(cfg)
    if is_shipped_file(args.checkpoint) and (args.tta
                                             or args.backbone_precision):
        flag = '--tta' if args.tta else '--backbone-precision'
        raise ValueError(f'{flag} with the shipped model {args.checkpoint}: '
                         'a shipped file runs as it was exported; give a '
                         'checkpoint instead')
    apply_test_flags(cfg, args.checkpoint, args.out, args.show_dir, args.tta)
    if is_shipped_file(args.checkpoint):
        deployed_model_config(cfg, args.checkpoint)
    add_backbone_precision(cfg, args.backbone_precision, args.calib_images)
    check_data_paths(cfg, TEST_LOADERS)
    runner = build_runner(cfg)
    add_dump_metric(runner, cfg, args.out)
    built_dataset(runner, 'test_dataloader')
    return runner.test()


if __name__ == '__main__':
    main()
