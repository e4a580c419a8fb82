"""Build a ResNeSt backbone and print what each output level looks like.

    python tools/analysis_tools/backbone_summary.py --arch resnest50d \
        --input-size 224
    python tools/analysis_tools/backbone_summary.py --cfg-options depth=101 \
        strides=1,2,1,1 dilations=1,1,2,4 contract_dilation=True

Prints parameters, and per output level the channels, stride and the shape of
a real forward pass, which necks (FPN ``in_channels``, decode heads) need.
"""
import argparse
from typing import List, Optional

from mmengine.config import DictAction

from resnest_mm.analysis.backbone_summary import summarize
from resnest_mm.models import ARCH_PRESETS


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--arch', default='resnest50d',
                        choices=sorted(ARCH_PRESETS), help='named variant')
    parser.add_argument('--input-size', type=int, default=224,
                        help='square input side in pixels')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        default={}, help='extra ResNeSt arguments, key=value')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    print('\n'.join(summarize(args.arch, args.input_size, **args.cfg_options)))


if __name__ == '__main__':
    main()
