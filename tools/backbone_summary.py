"""Build a ResNeSt backbone and print what each output level looks like.

    python tools/backbone_summary.py --arch resnest50d --input-size 224
    python tools/backbone_summary.py --cfg-options depth=101 strides=1,2,1,1 \
        dilations=1,1,2,4 contract_dilation=True

Prints parameters, and per output level the channels, stride and the shape of
a real forward pass, which necks (FPN ``in_channels``, decode heads) need.
"""
import argparse
import time
from typing import List, Optional

import torch
from mmengine.config import DictAction

from resnest_mm.models import ARCH_PRESETS, ResNeSt


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--arch', default='resnest50d',
                        choices=sorted(ARCH_PRESETS), help='named variant')
    parser.add_argument('--input-size', type=int, default=224,
                        help='square input side in pixels')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        default={}, help='extra ResNeSt arguments, key=value')
    return parser.parse_args(argv)


def summarize(arch: str, input_size: int, **kwargs) -> List[str]:
    """Lines describing the backbone and one eval forward of it."""
    if input_size < 32:
        raise ValueError(f'--input-size {input_size} is too small; ResNeSt '
                         'downsamples by 32, use at least 32')
    model = ResNeSt(arch=arch, **kwargs).eval()
    params = sum(p.numel() for p in model.parameters())
    x = torch.randn(1, 3, input_size, input_size)
    start = time.perf_counter()
    with torch.no_grad():
        outs = model(x)
    elapsed = time.perf_counter() - start
    lines = [f'{arch} depth={model.depth} params={params / 1e6:.2f}M '
             f'forward {tuple(x.shape)} in {elapsed * 1e3:.0f} ms']
    for idx, out, channels, stride in zip(sorted(set(model.out_indices)), outs,
                                          model.out_channels,
                                          model.out_strides):
        lines.append(f'  out[{idx}] channels={channels:4d} stride={stride:2d} '
                     f'shape={tuple(out.shape)}')
    return lines


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    print('\n'.join(summarize(args.arch, args.input_size, **args.cfg_options)))


if __name__ == '__main__':
    main()
