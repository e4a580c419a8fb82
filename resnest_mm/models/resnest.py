"""The ResNeSt backbone: image -> deep stem -> stages of bottlenecks -> features.

Data path for ``(B, in_channels, H, W)``::

    stem: 3x3/2 -> 3x3 -> 3x3 convs (each + norm + ReLU)   (B, stem, H/2, W/2)
    maxpool 3x3/2                                           (B, stem, H/4, W/4)
    layer{i+1} for each stage i                             (B, 256*2**i, H/s_i, W/s_i)
    -> tuple of the stages in ``out_indices``

``out_channels`` and ``out_strides`` state each output's channels and stride so
necks can be configured from the backbone. Parameter names are those of mmdet's
and mmseg's ``ResNeSt``: their checkpoints load with ``strict=True``.
"""
import warnings
from typing import List, Optional, Sequence, Tuple

import torch
from mmcv.cnn import build_conv_layer, build_norm_layer
from mmengine.model import BaseModule, Sequential
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

from resnest_mm.models.arch_presets import STAGE_BLOCKS, resolve_arch
from resnest_mm.models.arg_checks import check_backbone_args
from resnest_mm.models.bottleneck import ResNeStBottleneck
from resnest_mm.models.deploy import fold_sequential
from resnest_mm.models.drop_block import DropBlock2d
from resnest_mm.weights.load_hook import convert_foreign_weights

#: Stages that get DropBlock, as in the official training code (layer3, layer4).
DROP_BLOCK_STAGES = (2, 3)


def stage_dilations(num_blocks: int,
                    dilation: int,
                    contract_dilation: bool = False,
                    multi_grid: Optional[Sequence[int]] = None) -> List[int]:
    """Dilation of each block's 3x3 conv in one stage.

    ``contract_dilation`` halves the first block's dilation (2 -> 1, 4 -> 2),
    as mmseg, timm and the official dilated networks do, so the rate grows
    gradually. ``multi_grid`` (mmseg, last stage only) gives every block's rate.
    """
    if multi_grid is not None:
        return list(multi_grid)
    first = dilation // 2 if contract_dilation and dilation > 1 else dilation
    return [first] + [dilation] * (num_blocks - 1)


class ResNeSt(BaseModule):
    """ResNeSt backbone (Zhang et al. 2020) for mmdet and mmseg.

    Either ``depth`` (14, 26, 50, 101, 152, 200, 269) or ``arch`` (a preset
    name, see :data:`~resnest_mm.models.arch_presets.ARCH_PRESETS`) picks the
    network; ``None`` architecture arguments come from the preset, else from
    mmdet's defaults. docs/en/backbone.md has the full argument table.

    Args:
        depth: Network depth.
        arch: Named variant, e.g. ``'resnest50d'`` or ``'resnest50_fast_2s2x40d'``.
        in_channels: Image channels.
        stem_channels: Deep-stem output channels; ``None``: 64 up to depth 50,
            128 from 101 (the official widths; mmdet uses 64 unless told).
        base_channels: Channels of the first stage's bottleneck (``planes``).
        radix, groups, base_width, reduction_factor: Split-attention and
            bottleneck width settings (``2s1x64d`` = radix 2, 1 group, 64 wide).
        avg_down_stride: Stride through a 3x3 average pool instead of the 3x3
            conv (avd), as every released ResNeSt does.
        avd_first: Pool before the split-attention conv (the "fast" variants).
        num_stages, strides, dilations: Stage layout; one stride and one
            dilation per stage.
        out_indices: Stages whose outputs ``forward`` returns.
        style: ``'pytorch'`` or ``'caffe'`` (where the stride sits).
        contract_dilation: Halve the first dilation of a dilated stage.
        multi_grid: Per-block dilations of the last stage (mmseg).
        frozen_stages: Stages frozen (eval, no grad); 0 is the stem only,
            -1 none.
        conv_cfg, norm_cfg: mmcv layer configs.
        norm_eval: Keep BatchNorm layers in eval mode while training.
        dcn, stage_with_dcn: Deformable 3x3 convs and the stages that use them.
        plugins: mmdet plugin dicts (``cfg``, ``position``, optional ``stages``).
        drop_block: ``dict(prob=..., block_size=...)``: DropBlock in the last
            two stages, training only.
        with_cp: Activation checkpointing per block (training only).
        zero_init_residual: Zero every block's last norm at init, so each
            residual branch starts as identity.
        pretrained: Deprecated path to weights; prefer ``init_cfg``.
        init_cfg: mmengine init config.
    """

    def __init__(self,
                 depth: Optional[int] = None,
                 arch: Optional[str] = None,
                 in_channels: int = 3,
                 stem_channels: Optional[int] = None,
                 base_channels: int = 64,
                 radix: Optional[int] = None,
                 groups: Optional[int] = None,
                 base_width: Optional[int] = None,
                 reduction_factor: int = 4,
                 avg_down_stride: bool = True,
                 avd_first: Optional[bool] = None,
                 num_stages: int = 4,
                 strides: Sequence[int] = (1, 2, 2, 2),
                 dilations: Sequence[int] = (1, 1, 1, 1),
                 out_indices: Sequence[int] = (0, 1, 2, 3),
                 style: str = 'pytorch',
                 contract_dilation: bool = False,
                 multi_grid: Optional[Sequence[int]] = None,
                 frozen_stages: int = -1,
                 conv_cfg: Optional[dict] = None,
                 norm_cfg: dict = dict(type='BN', requires_grad=True),
                 norm_eval: bool = True,
                 dcn: Optional[dict] = None,
                 stage_with_dcn: Sequence[bool] = (False, False, False, False),
                 plugins: Optional[Sequence[dict]] = None,
                 drop_block: Optional[dict] = None,
                 with_cp: bool = False,
                 zero_init_residual: bool = True,
                 pretrained: Optional[str] = None,
                 init_cfg: Optional[dict] = None) -> None:
        arch_args = resolve_arch(
            depth, arch, radix=radix, groups=groups, base_width=base_width,
            avd_first=avd_first, stem_channels=stem_channels)
        depth = arch_args['depth']
        stage_blocks = STAGE_BLOCKS[depth][:num_stages]
        check_backbone_args(
            num_stages=num_stages, strides=strides, dilations=dilations,
            out_indices=out_indices, frozen_stages=frozen_stages, style=style,
            stage_blocks=stage_blocks, multi_grid=multi_grid, dcn=dcn,
            stage_with_dcn=stage_with_dcn, plugins=plugins,
            drop_block=drop_block, base_channels=base_channels,
            reduction_factor=reduction_factor, in_channels=in_channels,
            radix=arch_args['radix'], groups=arch_args['groups'],
            base_width=arch_args['base_width'],
            stem_channels=arch_args['stem_channels'])
        # Like mmdet, zero-init only when training from scratch, but for real:
        # mmdet's check ``block is Bottleneck`` never holds for ResNeSt.
        zero_init_norm3 = (zero_init_residual and pretrained is None
                           and init_cfg is None)
        super().__init__(self._init_cfg(pretrained, init_cfg))
        # Checkpoints of every release layout load as they are; another
        # variant's weights are refused (see resnest_mm/weights).
        self.register_load_state_dict_pre_hook(convert_foreign_weights)
        #: Inference-only, with folded norms; see :meth:`switch_to_deploy`.
        self.deploy = False
        self.channels_last = False

        self.depth = depth
        self.arch = arch
        self.num_stages = num_stages
        self.stage_blocks = stage_blocks
        self.out_indices = tuple(out_indices)
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        self.stem_channels = arch_args['stem_channels']
        # The other arguments, resolved, as mmdet's and mmseg's ResNeSt keep
        # them: code written against their backbone reads these attributes.
        self.base_channels = base_channels
        self.radix, self.groups = arch_args['radix'], arch_args['groups']
        self.base_width = arch_args['base_width']
        self.avd_first = arch_args['avd_first']
        self.reduction_factor = reduction_factor
        self.avg_down_stride = avg_down_stride
        self.strides, self.dilations = strides, dilations
        self.style = style
        self.contract_dilation, self.multi_grid = contract_dilation, multi_grid
        self.conv_cfg, self.norm_cfg = conv_cfg, norm_cfg
        self.dcn, self.stage_with_dcn = dcn, stage_with_dcn
        self.plugins = plugins
        self.with_cp = with_cp
        self.zero_init_residual = zero_init_residual
        self.pretrained = pretrained

        self.stem = self._make_stem(in_channels, self.stem_channels, conv_cfg,
                                    norm_cfg)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)

        block_init_cfg = dict(
            type='Constant', val=0,
            override=dict(name='norm3')) if zero_init_norm3 else None
        inplanes = self.stem_channels
        self.res_layers: List[str] = []
        for i, num_blocks in enumerate(stage_blocks):
            planes = base_channels * 2**i
            with_drop = drop_block is not None and i in DROP_BLOCK_STAGES
            layer = self._make_stage(
                inplanes=inplanes,
                planes=planes,
                stride=strides[i],
                dilations=stage_dilations(
                    num_blocks, dilations[i], contract_dilation,
                    multi_grid if i == num_stages - 1 else None),
                conv_cfg=conv_cfg,
                norm_cfg=norm_cfg,
                block_args=dict(
                    groups=arch_args['groups'],
                    base_width=arch_args['base_width'],
                    base_channels=base_channels,
                    radix=arch_args['radix'],
                    reduction_factor=reduction_factor,
                    avg_down_stride=avg_down_stride,
                    avd_first=arch_args['avd_first'],
                    style=style,
                    with_cp=with_cp,
                    dcn=dcn if dcn is not None and stage_with_dcn[i] else None,
                    plugins=self._stage_plugins(plugins, i),
                    drop_block=DropBlock2d(**drop_block) if with_drop else None,
                    init_cfg=block_init_cfg))
            inplanes = planes * ResNeStBottleneck.expansion
            name = f'layer{i + 1}'
            self.add_module(name, layer)
            self.res_layers.append(name)

        channels = [base_channels * 2**i * ResNeStBottleneck.expansion
                    for i in range(num_stages)]
        strides_so_far, stride = [], 4
        for s in strides[:num_stages]:
            stride *= s
            strides_so_far.append(stride)
        returned = [i for i in range(num_stages) if i in self.out_indices]
        #: Channels of each feature map ``forward`` returns, in its order.
        self.out_channels: Tuple[int, ...] = tuple(channels[i] for i in returned)
        #: Stride (input pixels per feature pixel) of each returned map.
        self.out_strides: Tuple[int, ...] = tuple(
            strides_so_far[i] for i in returned)
        self._freeze_stages()

    @staticmethod
    def _default_init_cfg() -> list:
        return [
            dict(type='Kaiming', layer='Conv2d'),
            dict(type='Constant', val=1, layer=['_BatchNorm', 'GroupNorm'])
        ]

    def _init_cfg(self, pretrained: Optional[str],
                  init_cfg: Optional[dict]) -> Optional[object]:
        if pretrained is None:
            return self._default_init_cfg() if init_cfg is None else init_cfg
        if not isinstance(pretrained, str):
            raise TypeError(f'pretrained={pretrained!r} must be a str path '
                            'or None')
        if init_cfg is not None:
            raise ValueError(
                f'pretrained={pretrained!r} and init_cfg={init_cfg!r} cannot '
                'both be set; use init_cfg=dict(type="Pretrained", '
                'checkpoint=...)')
        warnings.warn('pretrained is deprecated, use init_cfg=dict('
                      "type='Pretrained', checkpoint=...) instead")
        return dict(type='Pretrained', checkpoint=pretrained)

    @staticmethod
    def _make_stem(in_channels: int, stem_channels: int,
                   conv_cfg: Optional[dict], norm_cfg: dict) -> nn.Sequential:
        """The deep stem (ResNet-D): three 3x3 convs, the first strided."""
        half = stem_channels // 2
        layers: List[nn.Module] = []
        for c_in, c_out, stride in ((in_channels, half, 2), (half, half, 1),
                                    (half, stem_channels, 1)):
            layers += [
                build_conv_layer(conv_cfg, c_in, c_out, 3, stride=stride,
                                 padding=1, bias=False),
                build_norm_layer(norm_cfg, c_out)[1],
                nn.ReLU(inplace=True),
            ]
        return nn.Sequential(*layers)

    @staticmethod
    def _make_stage(inplanes: int, planes: int, stride: int,
                    dilations: List[int], conv_cfg: Optional[dict],
                    norm_cfg: dict, block_args: dict) -> Sequential:
        """One stage; the first block strides and projects the shortcut."""
        out_planes = planes * ResNeStBottleneck.expansion
        downsample = None
        if stride != 1 or inplanes != out_planes:
            # ResNet-D shortcut: average-pool, then an unstrided 1x1 conv.
            # mmdet's 1x1 pool of an unstrided stage is an identity: not run
            # here, nor exported (index 0 kept, so the keys stay mmdet's).
            pool = (nn.AvgPool2d(kernel_size=stride, stride=stride,
                                 ceil_mode=True, count_include_pad=False)
                    if stride > 1 else nn.Identity())
            downsample = nn.Sequential(
                pool,
                build_conv_layer(conv_cfg, inplanes, out_planes, 1,
                                 bias=False),
                build_norm_layer(norm_cfg, out_planes)[1])
        blocks = []
        for j, dilation in enumerate(dilations):
            blocks.append(
                ResNeStBottleneck(
                    inplanes=inplanes if j == 0 else out_planes,
                    planes=planes,
                    stride=stride if j == 0 else 1,
                    dilation=dilation,
                    downsample=downsample if j == 0 else None,
                    conv_cfg=conv_cfg,
                    norm_cfg=norm_cfg,
                    **block_args))
        return Sequential(*blocks)

    @staticmethod
    def _stage_plugins(plugins: Optional[Sequence[dict]],
                       stage: int) -> List[dict]:
        selected = []
        for plugin in plugins or []:
            plugin = dict(plugin)
            stages = plugin.pop('stages', None)
            if stages is None or stages[stage]:
                selected.append(plugin)
        return selected

    def _freeze_stages(self) -> None:
        frozen = [self.stem] if self.frozen_stages >= 0 else []
        frozen += [
            getattr(self, name)
            for name in self.res_layers[:max(self.frozen_stages, 0)]
        ]
        for module in frozen:
            module.eval()
            for param in module.parameters():
                param.requires_grad = False

    def switch_to_deploy(self, channels_last: bool = True) -> 'ResNeSt':
        """Turn this backbone into a faster, inference-only one, in place.

        Every conv + BatchNorm pair (stem, conv1/bn1, split-attention
        conv/bn0 and fc1/bn1, conv3/bn3, shortcut conv/norm) becomes one conv
        with a bias; other norms (GroupNorm, ...) and deformable convs stay.
        The split attention switches to its inference arithmetic. Parameters
        stop requiring grad and :meth:`train` refuses ``mode=True``.
        ``channels_last`` stores weights, and runs ``forward``, in NHWC,
        which oneDNN and cuDNN convs prefer. Outputs stay within 1e-4 of
        eval mode. Load weights before this call: the state dict changes
        (norm entries go, conv biases come).

        Works with ``torch.compile`` without graph breaks.
        """
        if self.deploy:
            return self
        self.eval()
        fold_sequential(self.stem)
        for name in self.res_layers:
            for block in getattr(self, name):
                block.switch_to_deploy()
        self.requires_grad_(False)
        if channels_last:
            self.to(memory_format=torch.channels_last)
        self.deploy = True
        self.channels_last = channels_last
        return self

    def train(self, mode: bool = True) -> 'ResNeSt':
        """Set train/eval mode; frozen stages and (``norm_eval``) BatchNorm
        layers stay in eval mode."""
        if mode and self.deploy:
            raise RuntimeError(
                'ResNeSt.train(True) after switch_to_deploy(): the BatchNorms '
                'are folded into the convs, so this backbone only runs '
                'inference. Build a new one (or load the weights saved before '
                'switch_to_deploy) to train.')
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, _BatchNorm):
                    m.eval()
        return self

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        """``(B, in_channels, H, W)`` -> one ``(B, C_i, H/s_i, W/s_i)`` map per
        entry of ``out_indices``, with ``C_i``/``s_i`` from ``out_channels`` and
        ``out_strides``. In deploy mode with ``channels_last`` the input is
        converted to, and the outputs come in, NHWC memory layout."""
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        x = self.maxpool(self.stem(x))
        outs = []
        for i, name in enumerate(self.res_layers):
            x = getattr(self, name)(x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)
