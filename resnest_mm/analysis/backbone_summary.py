"""What each output level of a ResNeSt looks like, from one real forward.

Necks (FPN ``in_channels``) and decode heads need the channels and stride of
every returned level; ``tools/analysis_tools/backbone_summary.py`` prints them.
"""
import time
from typing import List

import torch

from resnest_mm.models import ResNeSt


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
