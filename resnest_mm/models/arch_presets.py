"""ResNeSt architectures as data: stage depths and the named variants.

A variant is a row in :data:`ARCH_PRESETS`, not a subclass. The names are the
ones users already know from timm (``resnest50d``, ``resnest101e``, ...) and
from the official release (``resnest50``, ``resnest50_fast_2s2x40d``, ...), so
``ResNeSt(arch='resnest101e')`` builds the network those weights belong to.
"""
from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

#: Bottleneck blocks per stage for every supported depth (paper, timm and the
#: official code agree on these).
STAGE_BLOCKS: Dict[int, Tuple[int, int, int, int]] = {
    14: (1, 1, 1, 1),
    26: (2, 2, 2, 2),
    50: (3, 4, 6, 3),
    101: (3, 4, 23, 3),
    152: (3, 8, 36, 3),
    200: (3, 24, 36, 3),
    269: (3, 30, 48, 8),
}


def default_stem_channels(depth: int) -> int:
    """Output channels of the deep stem used by the official models.

    The official code calls half of this the ``stem_width``: 32 up to
    ResNeSt-50 (timm's ``d`` suffix) and 64 from ResNeSt-101 on (``e``).
    """
    return 64 if depth <= 50 else 128


@dataclass(frozen=True)
class ArchPreset:
    """The architecture arguments that distinguish one named variant.

    ``radix``/``groups``/``base_width`` read like the official names: ``2s1x64d``
    is radix 2, 1 group (cardinality), width 64 per group.
    """

    depth: int
    radix: int = 2
    groups: int = 1
    base_width: int = 64
    avd_first: bool = False

    @property
    def stem_channels(self) -> int:
        return default_stem_channels(self.depth)


def _fast(radix: int, groups: int, base_width: int) -> ArchPreset:
    """The official "fast" ablation models: ResNeSt-50 with avd before conv2."""
    return ArchPreset(50, radix, groups, base_width, avd_first=True)


ARCH_PRESETS: Dict[str, ArchPreset] = {
    # timm names
    'resnest14d': ArchPreset(14),
    'resnest26d': ArchPreset(26),
    'resnest50d': ArchPreset(50),
    'resnest101e': ArchPreset(101),
    'resnest200e': ArchPreset(200),
    'resnest269e': ArchPreset(269),
    'resnest50d_1s4x24d': _fast(1, 4, 24),
    'resnest50d_4s2x40d': _fast(4, 2, 40),
    # official names (torch hub)
    'resnest50': ArchPreset(50),
    'resnest101': ArchPreset(101),
    'resnest200': ArchPreset(200),
    'resnest269': ArchPreset(269),
    'resnest50_fast_1s1x64d': _fast(1, 1, 64),
    'resnest50_fast_2s1x64d': _fast(2, 1, 64),
    'resnest50_fast_4s1x64d': _fast(4, 1, 64),
    'resnest50_fast_1s2x40d': _fast(1, 2, 40),
    'resnest50_fast_2s2x40d': _fast(2, 2, 40),
    'resnest50_fast_4s2x40d': _fast(4, 2, 40),
    'resnest50_fast_1s4x24d': _fast(1, 4, 24),
}


def get_preset(arch: str) -> ArchPreset:
    """Look up a named variant, with an error that lists the valid names."""
    try:
        return ARCH_PRESETS[arch]
    except KeyError:
        raise ValueError(
            f'arch={arch!r} is not a known ResNeSt variant; choose one of '
            f'{sorted(ARCH_PRESETS)}') from None


def resolve_arch(depth: Optional[int], arch: Optional[str],
                 **given: Any) -> Dict[str, Any]:
    """Architecture arguments from an optional preset plus explicit values.

    ``given`` maps ``radix``, ``groups``, ``base_width``, ``avd_first`` and
    ``stem_channels`` to a value or ``None``. ``None`` takes the preset's value
    when ``arch`` is set, else mmdet's default (radix 2, 1 group, base width 4,
    avd after conv2) and the official stem width for ``depth``. Explicit
    values override the preset.
    """
    if arch is not None:
        preset = get_preset(arch)
        if depth is not None and depth != preset.depth:
            raise ValueError(
                f'depth={depth!r} contradicts arch={arch!r} (depth '
                f'{preset.depth}); give one of them')
        defaults = dict(radix=preset.radix, groups=preset.groups,
                        base_width=preset.base_width,
                        avd_first=preset.avd_first)
        depth = preset.depth
    elif depth is None:
        raise ValueError('ResNeSt needs depth (one of '
                         f'{sorted(STAGE_BLOCKS)}) or arch (one of '
                         f'{sorted(ARCH_PRESETS)})')
    else:
        defaults = dict(radix=2, groups=1, base_width=4, avd_first=False)
    if depth not in STAGE_BLOCKS:
        raise ValueError(f'depth={depth!r} is not a ResNeSt depth; choose '
                         f'one of {sorted(STAGE_BLOCKS)}')
    defaults['stem_channels'] = default_stem_channels(depth)
    resolved = {k: (defaults[k] if v is None else v) for k, v in given.items()}
    resolved['depth'] = depth
    return resolved
