"""Export a ResNeSt backbone (deploy mode) to ONNX; check it in onnxruntime.

    python tools/deployment/export_onnx.py --arch resnest50d \\
        --input-size 224 --out work_dirs/resnest50d.onnx [--checkpoint ours.pth]

Outputs ``c2`` .. ``c5`` (strides 4 .. 32), dynamic batch and size; see
:mod:`resnest_mm.deployment.backbone_onnx`. The export is checked by running
the same random image through PyTorch and onnxruntime (CPU) and reporting the
largest absolute difference over all outputs.
"""
import argparse
from typing import Dict, Optional, Sequence

from mmengine.config import DictAction

from resnest_mm.deployment.backbone_onnx import (build_deploy_model,
                                                 check_with_onnxruntime,
                                                 export)
from resnest_mm.models import ARCH_PRESETS


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--arch', default='resnest50d',
                        choices=sorted(ARCH_PRESETS))
    parser.add_argument('--checkpoint', default=None,
                        help='weights in our (mmdet/mmseg) layout')
    parser.add_argument('--input-size', type=int, default=224,
                        help='side of the example image used to trace')
    parser.add_argument('--check-batch-size', type=int, default=2,
                        help='batch of the onnxruntime check (tests the '
                        'dynamic batch axis)')
    parser.add_argument('--opset', type=int, default=17)
    parser.add_argument('--out', default='work_dirs/resnest.onnx')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        default={}, help='extra ResNeSt arguments, key=value')
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, float]:
    args = parse_args(argv)
    if args.input_size < 32:
        raise ValueError(f'--input-size {args.input_size} is too small; '
                         'ResNeSt downsamples by 32, use at least 32')
    model = build_deploy_model(args.arch, args.checkpoint, **args.cfg_options)
    names = export(model, args.out, args.input_size, args.opset)
    diffs = check_with_onnxruntime(model, args.out, args.check_batch_size,
                                   args.input_size)
    print(f'exported {args.out}: outputs {", ".join(names)} (strides '
          f'{", ".join(map(str, model.out_strides))})')
    for name, diff in diffs.items():
        print(f'  {name}: max abs diff vs PyTorch {diff:.3g}')
    print(f'max abs diff {max(diffs.values()):.3g}')
    return diffs


if __name__ == '__main__':
    main()
