"""Export a whole detector (Faster R-CNN) or segmentor (EncoderDecoder) to
ONNX and check it in onnxruntime against the toolbox's own predict.

    python tools/deployment/export_model.py CONFIG CHECKPOINT \\
        --out work_dirs/model.onnx [--shape 128 128] [--image img.jpg] \\
        [--cfg-options key=value ...]

The ONNX input is the data preprocessor's output (normalized, padded) with
dynamic height and width; outputs ``boxes``, ``scores``, ``labels`` for a
detector, ``logits``, ``labels`` for a segmentor: see
:mod:`resnest_mm.deployment.model_export`. The check runs one image
(``--image`` resized to ``--shape``, else a seeded random image) through
both.
"""
import argparse
from typing import Dict, Optional, Sequence

import numpy as np
from mmengine.config import DictAction

from resnest_mm.deployment.model_export import (build_model,
                                                compare_with_onnxruntime,
                                                export, preprocess)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint', help="'none' for the config's init")
    parser.add_argument('--out', default='work_dirs/model.onnx')
    parser.add_argument('--shape', type=int, nargs=2, default=[128, 128],
                        metavar=('H', 'W'),
                        help='image size of the trace and of the check')
    parser.add_argument('--image', default=None,
                        help='image file for the check (BGR, resized)')
    parser.add_argument('--opset', type=int, default=17)
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        default={}, help='config overrides, key=value')
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, float]:
    args = parse_args(argv)
    if min(args.shape) < 32:
        raise ValueError(f'--shape {args.shape} is too small; use at least '
                         '32 px a side')
    if args.opset < 16:
        raise ValueError(f'--opset {args.opset} is too old; RoiAlign with '
                         "mmcv's aligned=True needs 16 or newer")
    checkpoint = None if args.checkpoint == 'none' else args.checkpoint
    model, scope = build_model(args.config, checkpoint, args.cfg_options)
    names = export(model, scope, args.out, args.shape, args.opset)
    if args.image is None:
        image = np.random.default_rng(0).integers(
            0, 256, (*args.shape, 3), dtype=np.uint8)
    else:
        import mmcv
        image = mmcv.imresize(mmcv.imread(args.image), args.shape[::-1])
    report = compare_with_onnxruntime(model, scope, args.out,
                                      preprocess(model, image))
    print(f'exported {args.out} ({scope}): outputs {", ".join(names)}')
    for key, value in report.items():
        print(f'  {key}: {value:.4g}')
    return report


if __name__ == '__main__':
    main()
