"""The split-attention convolution: the one layer that makes ResNet a ResNeSt.

Data path for an input of shape ``(B, C_in, H, W)``, with ``R = radix``,
``G = groups`` (cardinality) and ``C = channels``::

    conv (groups = G*R)  -> (B, R*C, H, W)     R splits of C channels
    norm0, [DropBlock], ReLU
    pool each split, sum  -> (B, C, 1, 1)      the global context
    fc1 (groups = G) -> norm1 -> ReLU -> fc2   -> (B, R*C, 1, 1) logits
    softmax over R inside each group (sigmoid if R == 1)
    out = sum_r attention_r * split_r -> (B, C, H', W')

Module and parameter names (``conv``, ``bn0``, ``fc1``, ``bn1``, ``fc2``) are the
ones of mmdet, mmseg, timm and the official code, so their weights load as-is.
"""
from typing import Optional

import torch
import torch.distributed as dist
import torch.nn.functional as F
from mmcv.cnn import build_conv_layer, build_norm_layer
from mmengine.model import BaseModule
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

from resnest_mm.models.deploy import fold_pair, pointwise_conv_as_linear
from resnest_mm.models.drop_block import DropBlock2d


def attention_channels(in_channels: int, radix: int,
                       reduction_factor: int) -> int:
    """Width of the attention MLP's hidden layer (official formula)."""
    return max(in_channels * radix // reduction_factor, 32)


def radix_softmax(logits: Tensor, radix: int, groups: int) -> Tensor:
    """Turn ``fc2`` logits into per-split attention weights.

    Args:
        logits: ``(B, G*R*c, 1, 1)``, laid out group-major because ``fc2`` is a
            grouped conv.
        radix: R. With ``R == 1`` the attention is a sigmoid gate (SE-style).
        groups: G.

    Returns:
        ``(B, R, G*c, 1, 1)``: split-major, the layout of the conv output, so
        ``weights[:, r]`` multiplies split ``r`` directly.
    """
    batch = logits.shape[0]
    if radix == 1:
        return torch.sigmoid(logits).view(batch, 1, -1, 1, 1)
    per_group = logits.view(batch, groups, radix, -1).transpose(1, 2)
    return F.softmax(per_group, dim=1).reshape(batch, radix, -1, 1, 1)


def _is_cross_process_sync(norm: nn.Module) -> bool:
    return (isinstance(norm, nn.SyncBatchNorm) and dist.is_available()
            and dist.is_initialized() and dist.get_world_size() > 1)


class SplitAttentionConv2d(BaseModule):
    """Split-attention conv (Zhang et al. 2020, Fig. 2), config driven.

    Args:
        in_channels: Input channels ``C_in``.
        channels: Output channels ``C`` (each of the ``radix`` splits has ``C``).
        kernel_size, stride, padding, dilation: As for ``nn.Conv2d``.
        groups: Cardinality ``G``; the conv runs with ``G * radix`` groups.
        radix: Number of splits ``R`` (>= 1).
        reduction_factor: ``R*C_in / reduction_factor`` (at least 32) hidden
            channels in the attention MLP.
        conv_cfg: mmcv conv config for the main conv (``None``: ``nn.Conv2d``).
            A DCN config goes here; ``fc1``/``fc2`` are always plain 1x1 convs.
        norm_cfg: mmcv norm config for ``bn0`` and ``bn1``.
        drop_block: DropBlock applied after ``bn0`` in training, or ``None``.

    Training with one image: ``bn1`` normalises a ``(1, hidden, 1, 1)`` tensor,
    a single value per channel, where batch statistics do not exist (the peers
    crash with "Expected more than 1 value per channel"). Here such a batch is
    normalised with ``bn1``'s running statistics, which it does not update;
    every other norm still trains on batch statistics. Cross-process SyncBN
    sees the whole global batch and keeps its normal path.
    """

    def __init__(self,
                 in_channels: int,
                 channels: int,
                 kernel_size: int,
                 stride: int = 1,
                 padding: int = 0,
                 dilation: int = 1,
                 groups: int = 1,
                 radix: int = 2,
                 reduction_factor: int = 4,
                 conv_cfg: Optional[dict] = None,
                 norm_cfg: dict = dict(type='BN'),
                 drop_block: Optional[DropBlock2d] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg)
        hidden = attention_channels(in_channels, radix, reduction_factor)
        self.radix = radix
        self.groups = groups
        self.channels = channels
        self.conv = build_conv_layer(
            conv_cfg,
            in_channels,
            channels * radix,
            kernel_size,
            stride=stride,
            padding=padding,
            dilation=dilation,
            groups=groups * radix,
            bias=False)
        self.norm0_name, norm0 = build_norm_layer(
            norm_cfg, channels * radix, postfix=0)
        self.add_module(self.norm0_name, norm0)
        self.drop_block = drop_block
        self.relu = nn.ReLU(inplace=True)
        self.fc1 = nn.Conv2d(channels, hidden, 1, groups=groups)
        self.norm1_name, norm1 = build_norm_layer(norm_cfg, hidden, postfix=1)
        self.add_module(self.norm1_name, norm1)
        self.fc2 = nn.Conv2d(hidden, channels * radix, 1, groups=groups)
        #: Inference-only arithmetic with folded norms; see switch_to_deploy.
        self.deploy = False

    @property
    def norm0(self) -> nn.Module:
        return getattr(self, self.norm0_name)

    @property
    def norm1(self) -> nn.Module:
        return getattr(self, self.norm1_name)

    def _normalize_context(self, context: Tensor) -> Tensor:
        norm = self.norm1
        single_value = context.shape[0] == 1
        if (self.training and single_value and isinstance(norm, _BatchNorm)
                and norm.running_mean is not None
                and not _is_cross_process_sync(norm)):
            return F.batch_norm(context, norm.running_mean, norm.running_var,
                                norm.weight, norm.bias, False, 0.0, norm.eps)
        return norm(context)

    def switch_to_deploy(self) -> None:
        """Make this layer inference-only, in place: fold ``bn0`` into
        ``conv`` and ``bn1`` into ``fc1`` (BatchNorm only, see
        :mod:`resnest_mm.models.deploy`), turn ``fc1``/``fc2`` into
        ``nn.Linear`` layers, drop DropBlock, use :meth:`forward_deploy`.
        Outputs stay within 1e-5 of eval mode."""
        fold_pair(self, 'conv', self.norm0_name)
        fold_pair(self, 'fc1', self.norm1_name)
        if isinstance(self.norm1, nn.Identity):
            # (B, hidden) vectors; an unfolded norm1 (GroupNorm) wants maps
            self.fc1 = pointwise_conv_as_linear(self.fc1)
            self.fc2 = pointwise_conv_as_linear(self.fc2)
        self.drop_block = None
        self.deploy = True
        self.eval()

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C_in, H, W) -> (B, C, H', W')``."""
        if self.deploy:
            return self.forward_deploy(x)
        x = self.conv(x)
        x = self.norm0(x)
        if self.drop_block is not None:
            x = self.drop_block(x)
        x = self.relu(x)

        # The arithmetic below is bitwise that of mmdet/mmseg/timm. Training
        # mode needs it: BatchNorm over a batch of pooled vectors amplifies a
        # one-ulp difference (a fused multiply-add, another summation order)
        # to 1e-3 after a few blocks.
        batch = x.shape[0]
        splits = x.view(batch, self.radix, -1, *x.shape[2:])
        context = F.adaptive_avg_pool2d(
            splits.sum(1) if self.radix > 1 else x, 1)
        context = self.relu(self._normalize_context(self.fc1(context)))
        weights = radix_softmax(self.fc2(context), self.radix, self.groups)

        if self.training:
            # The peers' ops: autograd keeps the splits and the weights either
            # way, the product lives only until the sum, and its backward is
            # one broadcast multiply (a split-by-split sum costs more there).
            return (weights * splits).sum(dim=1)
        # Inference accumulates split by split, bit for bit the same sum
        # without the (B, R, C, H, W) product.
        out = splits[:, 0] * weights[:, 0]
        for r in range(1, self.radix):
            out += splits[:, r] * weights[:, r]
        return out

    def forward_deploy(self, x: Tensor) -> Tensor:
        """Inference arithmetic, ``(B, C_in, H, W) -> (B, C, H', W')``.

        Pooling is linear, so the context is pooled from all ``R*C`` channels
        and the splits are summed on ``(B, R*C, 1, 1)`` rather than on a
        ``(B, C, H', W')`` map; the weighted splits are accumulated in place
        (``addcmul_``), with one output map as the only large allocation.
        """
        x = self.relu(self.norm0(self.conv(x)))
        batch = x.shape[0]
        splits = x.view(batch, self.radix, -1, *x.shape[2:])
        context = x.mean((2, 3), keepdim=True).view(
            batch, self.radix, -1, 1, 1).sum(1)
        if isinstance(self.fc1, nn.Linear):
            context = context.flatten(1)  # (B, C): fc1/fc2 are linear
        context = self.relu(self.norm1(self.fc1(context)))
        weights = radix_softmax(self.fc2(context), self.radix, self.groups)
        out = splits[:, 0] * weights[:, 0]
        for r in range(1, self.radix):
            out.addcmul_(splits[:, r], weights[:, r])
        return out
