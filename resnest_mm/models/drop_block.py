"""DropBlock (Ghiasi et al. 2018): drop contiguous square regions of a feature map.

ResNeSt's training recipe applies it in the last two stages, after ``bn1``,
after the split-attention conv's ``bn0`` and after ``bn3`` of every block (the
places the official code puts it). It is the identity in eval mode.
"""
import torch
import torch.nn.functional as F
from torch import Tensor, nn


class DropBlock2d(nn.Module):
    """Zero ``block_size x block_size`` squares so that about ``prob`` of the
    activations are dropped, then rescale the rest to keep the mean.

    Args:
        prob: Target fraction of dropped activations, in ``[0, 1)``.
        block_size: Side of each dropped square (odd, >= 1). Clamped to the
            feature map size when the map is smaller.
    """

    def __init__(self, prob: float, block_size: int) -> None:
        super().__init__()
        if not 0.0 <= prob < 1.0:
            raise ValueError(
                f'drop_block prob={prob!r} must be in [0, 1)')
        if (not isinstance(block_size, int) or block_size < 1
                or block_size % 2 == 0):
            raise ValueError(f'drop_block block_size={block_size!r} must be '
                             'an odd integer >= 1')
        self.prob = prob
        self.block_size = block_size

    def extra_repr(self) -> str:
        return f'prob={self.prob}, block_size={self.block_size}'

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C, H, W) -> (B, C, H, W)``; identity unless training."""
        if not self.training or self.prob == 0.0:
            return x
        height, width = x.shape[-2:]
        size = min(self.block_size, height, width)
        if size % 2 == 0:
            size -= 1
        # gamma: the seed rate that drops ``prob`` of the map once every seed
        # grows into a size x size block (paper, eq. 1). Seeds only where a
        # whole block fits, so every block is complete.
        valid_h, valid_w = height - size + 1, width - size + 1
        gamma = (self.prob / size**2) * (height * width) / (valid_h * valid_w)
        seeds = torch.zeros_like(x)
        half = size // 2
        seeds[..., half:half + valid_h, half:half + valid_w] = torch.bernoulli(
            torch.full((*x.shape[:-2], valid_h, valid_w), gamma,
                       dtype=x.dtype, device=x.device))
        dropped = F.max_pool2d(seeds, size, stride=1, padding=half)
        keep = 1.0 - dropped
        kept = keep.sum()
        scale = keep.numel() / kept.clamp(min=1.0)
        return x * keep * scale
