"""Deploy mode: fold each BatchNorm into the conv in front of it.

In eval mode a BatchNorm is a fixed per-channel affine map, so
``bn(conv(x)) == conv'(x)`` for a conv with scaled weights and a bias::

    scale = gamma / sqrt(running_var + eps)           (C_out,)
    W'    = W * scale[:, None, None, None]            (C_out, C_in/g, k, k)
    b'    = beta + (b - running_mean) * scale         (C_out,)

One pass over the output per norm disappears, and the network keeps only
convs, ReLUs, pools and the split-attention arithmetic. The attention MLP's
1x1 convs see one pixel per image; they become ``nn.Linear`` layers, a GEMM
of B rows instead of a conv call with its set-up. Only plain
``nn.Conv2d`` followed by a BatchNorm with running statistics is folded: a
GroupNorm, a norm without running statistics, a deformable or
weight-standardised conv stays as it is and still computes the same thing.
"""
from typing import Optional

import torch
from mmcv.cnn.bricks.wrappers import Conv2d as MMCVConv2d
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

#: Conv classes whose forward is exactly ``F.conv2d(x, weight, bias, ...)``.
FOLDABLE_CONVS = (nn.Conv2d, MMCVConv2d)


def can_fold(conv: nn.Module, norm: nn.Module) -> bool:
    """Whether ``norm(conv(x))`` can become one conv in eval mode."""
    return (type(conv) in FOLDABLE_CONVS and isinstance(norm, _BatchNorm)
            and norm.running_mean is not None
            and norm.running_var is not None)


@torch.no_grad()
def fuse_conv_bn(conv: nn.Conv2d, norm: _BatchNorm) -> nn.Conv2d:
    """A new ``nn.Conv2d`` (with bias) equal to ``norm(conv(x))`` in eval.

    The arithmetic runs in float64 and is stored in the conv's dtype, so the
    folded conv differs from the pair only by the conv's own rounding.
    """
    fused = nn.Conv2d(
        conv.in_channels,
        conv.out_channels,
        conv.kernel_size,
        stride=conv.stride,
        padding=conv.padding,
        dilation=conv.dilation,
        groups=conv.groups,
        bias=True,
        padding_mode=conv.padding_mode,
        device=conv.weight.device,
        dtype=conv.weight.dtype)
    var = norm.running_var.double()
    scale = torch.rsqrt(var + norm.eps)
    if norm.weight is not None:
        scale = scale * norm.weight.double()
    bias = (conv.bias.double() if conv.bias is not None else
            torch.zeros_like(var))
    shift = -norm.running_mean.double() * scale + bias * scale
    if norm.bias is not None:
        shift = shift + norm.bias.double()
    fused.weight.copy_(conv.weight.double() * scale.view(-1, 1, 1, 1))
    fused.bias.copy_(shift)
    return fused


def fold_pair(parent: nn.Module, conv_name: str,
              norm_name: Optional[str]) -> bool:
    """Fold ``parent.<norm_name>`` into ``parent.<conv_name>`` in place.

    The conv is replaced by the fused conv and the norm by ``nn.Identity`` (the
    attribute names stay, so the forward code does not change). Returns
    whether the pair was folded; an unfoldable pair is left untouched.
    """
    if norm_name is None:
        return False
    conv, norm = getattr(parent, conv_name), getattr(parent, norm_name)
    if not can_fold(conv, norm):
        return False
    setattr(parent, conv_name, fuse_conv_bn(conv, norm))
    setattr(parent, norm_name, nn.Identity())
    return True


def fold_sequential(seq: nn.Sequential) -> int:
    """Fold every conv that is directly followed by a BatchNorm in ``seq``
    (the stem, a shortcut projection). Returns the number of folded pairs."""
    names = [name for name, _ in seq.named_children()]
    folded = 0
    for conv_name, norm_name in zip(names, names[1:]):
        folded += fold_pair(seq, conv_name, norm_name)
    return folded


@torch.no_grad()
def pointwise_conv_as_linear(conv: nn.Conv2d) -> nn.Linear:
    """An ``nn.Linear`` equal to a 1x1, stride-1 ``conv`` on ``(B, C_in)``.

    A grouped conv becomes a block-diagonal weight: ``groups`` times the
    multiply-adds of a ``(B, C_in)`` vector, nothing next to the convs.
    """
    if conv.kernel_size != (1, 1) or conv.stride != (1, 1) or conv.padding \
            != (0, 0):
        raise ValueError(f'{conv}: only a 1x1 conv with stride 1 and no '
                         'padding is a linear map of each pixel')
    linear = nn.Linear(conv.in_channels, conv.out_channels,
                       bias=conv.bias is not None,
                       device=conv.weight.device, dtype=conv.weight.dtype)
    weight = conv.weight.flatten(1)  # (C_out, C_in / groups)
    linear.weight.copy_(torch.block_diag(*weight.chunk(conv.groups)))
    if conv.bias is not None:
        linear.bias.copy_(conv.bias)
    return linear
