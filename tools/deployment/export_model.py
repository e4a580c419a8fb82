"""Export a whole detector (Faster R-CNN) or segmentor (EncoderDecoder) to
one deployable file in fp32, int8 or bf16, and check it against the
toolbox's own predict.

    python tools/deployment/export_model.py CONFIG CHECKPOINT \\
        [--precision fp32|int8|bf16] [--out work_dirs/model_int8.onnx] \\
        [--shape 128 128] [--calib-images 32] [--image img.jpg] \\
        [--cfg-options key=value ...]

fp32 and int8 are ONNX files run by onnxruntime, bf16 a ``torch.export``
program (``.pt2``) run by PyTorch; int8 calibrates on the config's
``train_dataloader`` images (a train set that is the test or val set is
refused). The input is the data preprocessor's output (normalized, padded)
with dynamic height and width; outputs ``boxes``, ``scores``, ``labels`` for
a detector, ``logits``, ``labels`` for a segmentor, post-processing
included: see :mod:`resnest_mm.deployment.shipping`. ``tools/test.py CONFIG
FILE`` evaluates the file; :class:`resnest_mm.deployment.deployed_model.
DeployedModel` runs it from Python. The check runs one image (``--image``
resized to ``--shape``, else a seeded random image) through the file and
the PyTorch fp32 model.
"""
import argparse
from typing import Dict, Optional, Sequence

import numpy as np
from mmengine.config import DictAction

from resnest_mm.deployment.deployed_model import DeployedModel
from resnest_mm.deployment.low_precision import (PRECISIONS,
                                                 slow_precision_warning)
from resnest_mm.deployment.model_export import (build_model,
                                                detection_differences,
                                                load_config, pair_detections,
                                                preprocess, pytorch_outputs)
from resnest_mm.deployment.shipping import (EXTENSIONS, calibration_images,
                                            check_shippable, ship)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint', help="'none' for the config's init")
    parser.add_argument('--precision', choices=PRECISIONS, default='fp32',
                        help='fp32 and int8: ONNX (onnxruntime); bf16: '
                        'torch.export (PyTorch)')
    parser.add_argument('--out', default=None,
                        help='the file to write (default work_dirs/'
                        'model.onnx, model_int8.onnx, model_bf16.pt2)')
    parser.add_argument('--shape', type=int, nargs=2, default=[128, 128],
                        metavar=('H', 'W'),
                        help='image size of the trace and of the check')
    parser.add_argument('--calib-images', type=int, default=32,
                        help="int8: calibration images from the config's "
                        'train_dataloader')
    parser.add_argument('--image', default=None,
                        help='image file for the check (BGR, resized)')
    parser.add_argument('--opset', type=int, default=17)
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        default={}, help='config overrides, key=value')
    return parser.parse_args(argv)


def default_out(precision: str) -> str:
    suffix = '' if precision == 'fp32' else f'_{precision}'
    return f'work_dirs/model{suffix}{EXTENSIONS[precision]}'


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, float]:
    args = parse_args(argv)
    if min(args.shape) < 32:
        raise ValueError(f'--shape {args.shape} is too small; use at least '
                         '32 px a side')
    if args.opset < 16:
        raise ValueError(f'--opset {args.opset} is too old; RoiAlign with '
                         "mmcv's aligned=True needs 16 or newer")
    out = args.out or default_out(args.precision)
    checkpoint = None if args.checkpoint == 'none' else args.checkpoint
    model, scope = build_model(args.config, checkpoint, args.cfg_options)
    cfg, _ = load_config(args.config, args.cfg_options)
    # every refusal (model parts, file name, calibration set) comes before
    # anything is written
    check_shippable(model, scope, args.precision, out)
    calibration, note = [], None
    if args.precision == 'int8':
        calibration = calibration_images(cfg, model.data_preprocessor,
                                         args.calib_images)
        note = f'{len(calibration)} images of the train_dataloader'
    ship(model, scope, cfg, args.precision, out, args.shape, calibration,
         note, args.opset)
    if args.image is None:
        image = np.random.default_rng(0).integers(
            0, 256, (*args.shape, 3), dtype=np.uint8)
    else:
        import mmcv
        image = mmcv.imresize(mmcv.imread(args.image), args.shape[::-1])
    image = preprocess(model, image)
    deployed = DeployedModel(out)
    got, want = deployed.outputs(image), pytorch_outputs(model, scope, image)
    if scope == 'mmseg':
        report = {'max_logit_diff': (got[0] - want[0]).abs().max().item(),
                  'labels_equal': (got[1] == want[1]).float().mean().item()}
    else:
        report = detection_differences(got, want)
        if args.precision != 'fp32':
            report.update(pair_detections(got, want))
    print(f'exported {out} ({scope}, {args.precision}); against the PyTorch '
          'fp32 model on one image:')
    for key, value in report.items():
        print(f'  {key}: {value:.4g}')
    warning = slow_precision_warning(args.precision)
    if warning:
        print(f'note: {warning}')
    return report


if __name__ == '__main__':
    main()
