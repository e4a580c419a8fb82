"""Does a checkpoint fit the backbone it is loaded into? If not, what is it?

Tensor shapes pin down the architecture: stem width, blocks per stage (so the
depth), radix, groups and group width. mmengine only *warns* about a shape
mismatch when it loads pretrained weights, and leaves those layers random;
we refuse instead and name the variant the checkpoint belongs to.

One choice leaves no trace in the weights: ``avd_first`` (average pool before
or after the split-attention conv; the official "fast" models pool first).
Weights we convert from a named release record it in the state dict's
metadata under :data:`ARCH_METADATA_KEY`, and it is checked from there.
"""
import re
from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Tuple

from torch import Tensor

from resnest_mm.models.arch_presets import ARCH_PRESETS, STAGE_BLOCKS

#: Key of the entry in ``state_dict._metadata['']`` (torch's per-module
#: metadata, which survives saving and loading) that records the variant:
#: ``{'arch': 'resnest50_fast_2s2x40d', 'avd_first': True}``.
ARCH_METADATA_KEY = 'resnest_mm_arch'
_BLOCK_INDEX = re.compile(r'^layer(\d+)\.(\d+)\.')


class ArchMismatchError(ValueError):
    """The checkpoint belongs to another ResNeSt variant than the model."""


@dataclass(frozen=True)
class ArchSummary:
    """What a state dict in our layout says about its network.

    ``None`` marks what the dict does not show (a partial dict).
    ``base_width`` is only meaningful with ``groups > 1``.
    """

    in_channels: Optional[int]
    stem_channels: Optional[int]
    stage_blocks: Tuple[int, ...]
    radix: Optional[int]
    groups: Optional[int]
    base_width: Optional[int]

    @property
    def depth(self) -> Optional[int]:
        """The depth whose stages these are, ``None`` if none or several."""
        n = len(self.stage_blocks)
        depths = [d for d, blocks in STAGE_BLOCKS.items()
                  if n and blocks[:n] == self.stage_blocks]
        return depths[0] if len(depths) == 1 else None

    def describe(self) -> str:
        """``'depth=101, stem_channels=128, radix=2, groups=1'`` and so on."""
        parts = [f'depth={self.depth}' if self.depth is not None else
                 f'blocks per stage {self.stage_blocks}',
                 f'stem_channels={self.stem_channels}',
                 f'radix={self.radix}', f'groups={self.groups}']
        if self.groups is not None and self.groups > 1:
            parts.append(f'base_width={self.base_width}')
        if self.in_channels not in (None, 3):
            parts.append(f'in_channels={self.in_channels}')
        return ', '.join(parts)

    def preset_names(self, avd_first: Optional[bool] = None) -> List[str]:
        """Named variants with exactly these shapes (and ``avd_first``, when
        given: the weights cannot tell)."""
        return [
            name for name, p in ARCH_PRESETS.items()
            if (p.depth, p.stem_channels, p.radix, p.groups) == (
                self.depth, self.stem_channels, self.radix, self.groups)
            and (p.groups == 1 or p.base_width == self.base_width)
            and avd_first in (None, p.avd_first)
        ]


def _shape(sd: Mapping[str, Tensor], key: str) -> Optional[Tuple[int, ...]]:
    value = sd.get(key)
    return None if value is None else tuple(value.shape)


def summarize_arch(state_dict: Mapping[str, Tensor]) -> ArchSummary:
    """Read the architecture off a state dict in our layout.

    ``conv2.conv`` of ``layer1.0`` is ``(radix * width, width / (groups *
    radix), 3, 3)`` and its ``fc1`` is ``(hidden, width / groups, 1, 1)``,
    where ``width = conv1``'s output channels.
    """
    blocks: Dict[int, int] = {}
    for key in state_dict:
        m = _BLOCK_INDEX.match(key)
        if m:
            stage, block = int(m.group(1)), int(m.group(2))
            blocks[stage] = max(blocks.get(stage, 0), block + 1)
    stage_blocks = []
    for stage in range(1, len(blocks) + 1):
        if stage not in blocks:
            break
        stage_blocks.append(blocks[stage])
    stem = _shape(state_dict, 'stem.0.weight')
    stem_out = _shape(state_dict, 'stem.6.weight')
    conv1 = _shape(state_dict, 'layer1.0.conv1.weight')
    conv2 = _shape(state_dict, 'layer1.0.conv2.conv.weight')
    fc1 = _shape(state_dict, 'layer1.0.conv2.fc1.weight')
    radix = groups = base_width = None
    if conv1 and conv2 and fc1:
        width = conv1[0]
        radix, groups = conv2[0] // width, width // fc1[1]
        base_width = width // groups
    return ArchSummary(
        in_channels=stem[1] if stem else None,
        stem_channels=stem_out[0] if stem_out else None,
        stage_blocks=tuple(stage_blocks), radix=radix, groups=groups,
        base_width=base_width)


def check_fits(model_state: Mapping[str, Tensor],
               state_dict: Mapping[str, Tensor],
               model_avd_first: Optional[bool] = None,
               recorded: Optional[Mapping] = None) -> Dict[str, str]:
    """Refuse a state dict (our layout) made for another variant.

    Args:
        model_state: The target backbone's own ``state_dict()``.
        state_dict: The weights about to be loaded.
        model_avd_first: The model's ``avd_first``, if known.
        recorded: What the checkpoint records under
            :data:`ARCH_METADATA_KEY` (``arch``, ``avd_first``), if anything.

    Returns:
        Keys of whole stages the model does not build (``num_stages`` below
        the checkpoint's), mapped to why they can be left out.

    Raises:
        ArchMismatchError: Naming each mismatching stage and key with both
            shapes, what the checkpoint looks like, and what the model is.
    """
    ours, theirs = summarize_arch(model_state), summarize_arch(state_dict)
    problems, unbuilt = [], {}
    for i, n in enumerate(theirs.stage_blocks):
        if i >= len(ours.stage_blocks):
            unbuilt.update({k: f'layer{i + 1} is not built (the model has '
                               f'{len(ours.stage_blocks)} stages)'
                            for k in state_dict
                            if k.startswith(f'layer{i + 1}.')})
        elif n != ours.stage_blocks[i]:
            problems.append(f'layer{i + 1} has {n} blocks in the checkpoint, '
                            f'{ours.stage_blocks[i]} in the model')
    shapes = [f'{k}: checkpoint {tuple(v.shape)}, model '
              f'{tuple(model_state[k].shape)}' for k, v in state_dict.items()
              if k in model_state and model_state[k].shape != v.shape]
    problems += shapes[:3]
    if len(shapes) > 3:
        problems.append(f'and {len(shapes) - 3} more shape mismatches')
    recorded = recorded or {}
    avd_first = recorded.get('avd_first')
    if None not in (model_avd_first, avd_first) and (
            model_avd_first != avd_first):
        problems.append(
            f'the checkpoint was trained with avd_first={avd_first}, the '
            f'model has avd_first={model_avd_first} (pooling before conv2 is '
            'what the "fast" variants do)')
    if problems:
        names = ([recorded['arch']] if recorded.get('arch') else
                 theirs.preset_names(avd_first))
        named = f"{' / '.join(names)} " if names else ''
        hint = (f"arch='{names[0]}'" if names else
                'the arguments the checkpoint shows')
        raise ArchMismatchError(
            'checkpoint does not fit this ResNeSt: ' + '; '.join(problems) +
            f'. The checkpoint looks like {named}({theirs.describe()}); the '
            f'model is {ours.describe()}. Build the backbone with {hint}.')
    return unbuilt
