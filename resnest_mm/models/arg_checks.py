"""Validation of ResNeSt's constructor arguments.

Every error names the argument, the value given and what is allowed, before
any layer is built: a typo in a config should read as a sentence, not as a
shape mismatch deep inside a conv.
"""
from typing import Any, Optional, Sequence

from resnest_mm.models.bottleneck import PLUGIN_POSITIONS, bottleneck_width
from resnest_mm.models.split_attention import attention_channels


def _positive_int(name: str, value: Any, minimum: int = 1) -> None:
    if not isinstance(value, int) or isinstance(value, bool) \
            or value < minimum:
        raise ValueError(
            f'{name}={value!r} is invalid; it must be an integer >= {minimum}')


def _per_stage(name: str, values: Any, num_stages: int) -> None:
    if not isinstance(values, (list, tuple)) or len(values) != num_stages:
        raise ValueError(
            f'{name}={values!r} must be a tuple with one entry per stage '
            f'(num_stages={num_stages}, so {num_stages} entries)')


def check_backbone_args(*, num_stages: int, strides: Sequence[int],
                        dilations: Sequence[int], out_indices: Sequence[int],
                        frozen_stages: int, style: str,
                        stage_blocks: Sequence[int],
                        multi_grid: Optional[Sequence[int]],
                        dcn: Optional[dict], stage_with_dcn: Sequence[bool],
                        plugins: Optional[Sequence[dict]],
                        drop_block: Optional[dict], base_channels: int,
                        reduction_factor: int, in_channels: int, radix: int,
                        groups: int, base_width: int,
                        stem_channels: int) -> None:
    """Raise ``ValueError`` for the first argument that cannot work."""
    if num_stages not in (1, 2, 3, 4):
        raise ValueError(
            f'num_stages={num_stages!r} is invalid; it must be 1, 2, 3 or 4')
    for name, value in (('radix', radix), ('groups', groups),
                        ('base_width', base_width),
                        ('base_channels', base_channels),
                        ('reduction_factor', reduction_factor),
                        ('in_channels', in_channels)):
        _positive_int(name, value)
    _positive_int('stem_channels', stem_channels, minimum=2)
    if stem_channels % 2:
        raise ValueError(f'stem_channels={stem_channels!r} must be even: '
                         'the deep stem starts with half of it')
    if style not in ('pytorch', 'caffe'):
        raise ValueError(
            f"style={style!r} must be 'pytorch' or 'caffe'")
    _per_stage('strides', strides, num_stages)
    _per_stage('dilations', dilations, num_stages)
    for s in strides:
        _positive_int('every entry of strides', s)
    for d in dilations:
        _positive_int('every entry of dilations', d)
    if not isinstance(out_indices, (list, tuple)) or not out_indices or any(
            not isinstance(i, int) or not 0 <= i < num_stages
            for i in out_indices):
        raise ValueError(
            f'out_indices={out_indices!r} must be a non-empty tuple of stage '
            f'indices in [0, {num_stages - 1}] (num_stages={num_stages})')
    if not isinstance(frozen_stages, int) or \
            not -1 <= frozen_stages <= num_stages:
        raise ValueError(
            f'frozen_stages={frozen_stages!r} must be in [-1, {num_stages}]: '
            '-1 freezes nothing, 0 the stem, k the stem and k stages')
    if multi_grid is not None and len(multi_grid) != stage_blocks[-1]:
        raise ValueError(
            f'multi_grid={multi_grid!r} needs one dilation per block of the '
            f'last stage ({stage_blocks[-1]} blocks)')
    if dcn is not None:
        if not isinstance(dcn, dict):
            raise ValueError(f'dcn={dcn!r} must be a conv config dict')
        _per_stage('stage_with_dcn', stage_with_dcn, num_stages)
    for plugin in plugins or []:
        if plugin.get('position') not in PLUGIN_POSITIONS or 'cfg' not in \
                plugin:
            raise ValueError(
                f'plugin {plugin!r} needs a cfg and a position in '
                f'{PLUGIN_POSITIONS}')
        if plugin.get('stages') is not None:
            _per_stage("a plugin's stages", plugin['stages'], num_stages)
    if drop_block is not None and (not isinstance(drop_block, dict)
                                   or set(drop_block) != {'prob', 'block_size'}):
        raise ValueError(f'drop_block={drop_block!r} must be None or '
                         'dict(prob=float, block_size=int)')
    for stage in range(num_stages):
        width = bottleneck_width(base_channels * 2**stage, groups, base_width,
                                 base_channels)
        hidden = attention_channels(width, radix, reduction_factor)
        if width < 1 or width % (groups * radix) or hidden % groups:
            raise ValueError(
                f'groups={groups}, radix={radix}, base_width={base_width}, '
                f'reduction_factor={reduction_factor} do not fit stage '
                f'{stage}: its bottleneck width {width} must be a positive '
                f'multiple of groups*radix={groups * radix} and its attention '
                f'width {hidden} a multiple of groups={groups}')
