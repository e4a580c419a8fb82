"""The ResNeSt bottleneck block: 1x1 conv, split-attention 3x3, 1x1 conv.

Data path (``style='pytorch'``), for ``(B, inplanes, H, W)`` in::

    conv1 1x1 -> bn1 -> [DropBlock] -> ReLU               (B, width, H, W)
    [avd: 3x3 avg-pool, stride s]            if avd_first
    conv2: split-attention 3x3 (stride s unless avd)      (B, width, H/s, W/s)
    [avd: 3x3 avg-pool, stride s]            if not avd_first
    conv3 1x1 -> bn3 -> [DropBlock]                       (B, 4*planes, H/s, W/s)
    + downsample(x) -> ReLU

"avd" (average-pool downsampling) moves the stride out of the 3x3 conv into an
average pool; it is used only where the block is strided. Parameter names equal
mmdet's and mmseg's ResNeSt block, so their checkpoints load unchanged.
"""
import math
from contextlib import contextmanager, nullcontext
from typing import Iterator, List, Optional, Sequence

import torch
import torch.utils.checkpoint as cp
from mmcv.cnn import build_conv_layer, build_norm_layer, build_plugin_layer
from mmengine.model import BaseModule
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

from resnest_mm.models.deploy import fold_pair, fold_sequential
from resnest_mm.models.drop_block import DropBlock2d
from resnest_mm.models.split_attention import SplitAttentionConv2d

PLUGIN_POSITIONS = ('after_conv1', 'after_conv2', 'after_conv3')


def bottleneck_width(planes: int, groups: int, base_width: int,
                     base_channels: int = 64) -> int:
    """Channels of the 3x3 split-attention conv, mmdet's rule.

    With one group the width is ``planes``; with ``groups`` groups it is
    ``floor(planes * base_width / base_channels) * groups`` (ResNeXt's rule,
    and the official code's for every released model).
    """
    if groups == 1:
        return planes
    return math.floor(planes * base_width / base_channels) * groups


@contextmanager
def running_stats_kept(module: nn.Module) -> Iterator[None]:
    """Restore every BatchNorm's running statistics on exit.

    Activation checkpointing runs a block's forward a second time during
    backward; without this, BatchNorm would count that batch twice.
    """
    norms = [
        m for m in module.modules()
        if isinstance(m, _BatchNorm) and m.training and m.track_running_stats
    ]
    saved = [[b.clone() for b in m.buffers()] for m in norms]
    try:
        yield
    finally:
        with torch.no_grad():
            for norm, buffers in zip(norms, saved):
                for buf, old in zip(norm.buffers(), buffers):
                    buf.copy_(old)


class ResNeStBottleneck(BaseModule):
    """One ResNeSt bottleneck block.

    Args:
        inplanes: Input channels.
        planes: Base channels of the stage; the block outputs ``4 * planes``.
        stride: Spatial stride of the block.
        dilation: Dilation (and padding) of the 3x3 conv.
        downsample: Shortcut projection, or ``None`` for identity.
        groups, base_width, base_channels: See :func:`bottleneck_width`.
        radix, reduction_factor: Split-attention settings.
        avg_down_stride: Stride with an average pool around conv2 (avd).
        avd_first: Put that pool before conv2 instead of after ("fast" models).
        style: ``'pytorch'`` (stride in the 3x3) or ``'caffe'`` (in conv1).
        with_cp: Activation checkpointing in training; see :meth:`forward`.
        conv_cfg, norm_cfg: mmcv layer configs.
        dcn: Deformable conv config for the 3x3 conv. With
            ``fallback_on_stride=True`` a block whose 3x3 conv is strided uses a
            plain conv instead.
        plugins: mmdet-style plugin dicts (``cfg``, ``position``).
        drop_block: DropBlock module for this block, or ``None``.
    """

    expansion = 4

    def __init__(self,
                 inplanes: int,
                 planes: int,
                 stride: int = 1,
                 dilation: int = 1,
                 downsample: Optional[nn.Module] = None,
                 groups: int = 1,
                 base_width: int = 4,
                 base_channels: int = 64,
                 radix: int = 2,
                 reduction_factor: int = 4,
                 avg_down_stride: bool = True,
                 avd_first: bool = False,
                 style: str = 'pytorch',
                 with_cp: bool = False,
                 conv_cfg: Optional[dict] = None,
                 norm_cfg: dict = dict(type='BN'),
                 dcn: Optional[dict] = None,
                 plugins: Optional[Sequence[dict]] = None,
                 drop_block: Optional[DropBlock2d] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg)
        self.inplanes = inplanes
        self.planes = planes
        self.stride = stride
        self.dilation = dilation
        self.with_cp = with_cp
        width = bottleneck_width(planes, groups, base_width, base_channels)
        self.width = width
        conv1_stride, conv2_stride = (1, stride) if style == 'pytorch' else (
            stride, 1)
        self.avg_down_stride = avg_down_stride and conv2_stride > 1
        self.avd_first = avd_first

        self.conv1 = build_conv_layer(
            conv_cfg, inplanes, width, 1, stride=conv1_stride, bias=False)
        self.norm1_name, norm1 = build_norm_layer(norm_cfg, width, postfix=1)
        self.add_module(self.norm1_name, norm1)

        split_stride = 1 if self.avg_down_stride else conv2_stride
        self.conv2 = SplitAttentionConv2d(
            width,
            width,
            kernel_size=3,
            stride=split_stride,
            padding=dilation,
            dilation=dilation,
            groups=groups,
            radix=radix,
            reduction_factor=reduction_factor,
            conv_cfg=self._conv2_cfg(conv_cfg, dcn, split_stride),
            norm_cfg=norm_cfg,
            drop_block=drop_block)
        if self.avg_down_stride:
            self.avd_layer = nn.AvgPool2d(3, conv2_stride, padding=1)

        self.conv3 = build_conv_layer(
            conv_cfg, width, planes * self.expansion, 1, bias=False)
        self.norm3_name, norm3 = build_norm_layer(
            norm_cfg, planes * self.expansion, postfix=3)
        self.add_module(self.norm3_name, norm3)
        self.drop_block = drop_block
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

        plugins = list(plugins or [])
        for plugin in plugins:
            if plugin.get('position') not in PLUGIN_POSITIONS:
                raise ValueError(
                    f"plugin position={plugin.get('position')!r} must be one "
                    f'of {PLUGIN_POSITIONS}')
        # Plugins see the channels actually flowing at their position: the
        # bottleneck width (not ``planes``, which differs when groups > 1).
        channels_at = dict(
            after_conv1=width,
            after_conv2=width,
            after_conv3=planes * self.expansion)
        self.plugin_names = {
            position: self._make_plugins(
                channels_at[position],
                [p['cfg'] for p in plugins if p['position'] == position])
            for position in PLUGIN_POSITIONS
        }

    @staticmethod
    def _conv2_cfg(conv_cfg: Optional[dict], dcn: Optional[dict],
                   stride: int) -> Optional[dict]:
        if dcn is None:
            return conv_cfg
        dcn = dict(dcn)  # never mutate the config shared by all blocks
        fallback_on_stride = dcn.pop('fallback_on_stride', False)
        if fallback_on_stride and stride > 1:
            return conv_cfg
        if conv_cfg is not None:
            raise ValueError(f'conv_cfg={conv_cfg!r} must be None when dcn '
                             'is set: the dcn config defines the 3x3 conv')
        return dcn

    def _make_plugins(self, in_channels: int,
                      plugin_cfgs: List[dict]) -> List[str]:
        names = []
        for cfg in plugin_cfgs:
            cfg = dict(cfg)
            name, layer = build_plugin_layer(
                cfg, in_channels=in_channels, postfix=cfg.pop('postfix', ''))
            if hasattr(self, name):
                raise ValueError(
                    f'plugin name {name!r} is used twice in one block; give '
                    'each plugin of the same type a distinct postfix')
            self.add_module(name, layer)
            names.append(name)
        return names

    @property
    def norm1(self) -> nn.Module:
        return getattr(self, self.norm1_name)

    @property
    def norm3(self) -> nn.Module:
        return getattr(self, self.norm3_name)

    def _plugins(self, x: Tensor, position: str) -> Tensor:
        for name in self.plugin_names[position]:
            x = getattr(self, name)(x)
        return x

    def _drop(self, x: Tensor) -> Tensor:
        return x if self.drop_block is None else self.drop_block(x)

    def _residual(self, x: Tensor) -> Tensor:
        """Everything but the final ReLU: ``(B, inplanes, H, W)`` in."""
        out = self.relu(self._drop(self.norm1(self.conv1(x))))
        out = self._plugins(out, 'after_conv1')
        if self.avg_down_stride and self.avd_first:
            out = self.avd_layer(out)
        out = self.conv2(out)
        if self.avg_down_stride and not self.avd_first:
            out = self.avd_layer(out)
        out = self._plugins(out, 'after_conv2')
        out = self._drop(self.norm3(self.conv3(out)))
        out = self._plugins(out, 'after_conv3')
        out += x if self.downsample is None else self.downsample(x)
        return out

    def switch_to_deploy(self) -> None:
        """Make this block inference-only, in place: fold conv1/bn1,
        conv3/bn3, the shortcut's conv/norm and the split-attention norms
        (BatchNorm only, see :mod:`resnest_mm.models.deploy`); no DropBlock,
        no checkpointing."""
        fold_pair(self, 'conv1', self.norm1_name)
        fold_pair(self, 'conv3', self.norm3_name)
        if isinstance(self.downsample, nn.Sequential):
            fold_sequential(self.downsample)
        self.conv2.switch_to_deploy()
        self.drop_block = None
        self.with_cp = False
        self.eval()

    def _needs_checkpoint(self, x: Tensor) -> bool:
        # Checkpoint whenever backward will reach this block, also when its
        # input has no grad (frozen stem): non-reentrant checkpointing still
        # produces the parameter gradients, unlike mmdet's reentrant one.
        return (self.with_cp and self.training and torch.is_grad_enabled()
                and (x.requires_grad
                     or any(p.requires_grad for p in self.parameters())))

    def forward(self, x: Tensor) -> Tensor:
        """``(B, inplanes, H, W) -> (B, 4*planes, H/stride, W/stride)``.

        With ``with_cp`` the activations inside the block are recomputed in
        backward instead of stored. Outputs, gradients and BatchNorm running
        statistics equal the non-checkpointed block: the recomputation
        replays the same random numbers (DropBlock) and its BatchNorm updates
        are undone.
        """
        if self._needs_checkpoint(x):
            out = cp.checkpoint(
                self._residual,
                x,
                use_reentrant=False,
                context_fn=lambda:
                (nullcontext(), running_stats_kept(self)))
        else:
            out = self._residual(x)
        return self.relu(out)
