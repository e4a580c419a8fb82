"""Where each ResNeSt release puts its tensors, and the key maps into ours.

The networks are the same; only the names differ. Deep stem first, then the
one place inside the stages where layouts disagree::

    ours = mmdet = mmseg     official = timm    mmpretrain (mmcls)
    stem.0 / stem.1          conv1.0 / conv1.1  stem.0.conv / stem.0.bn
    stem.3 / stem.4          conv1.3 / conv1.4  stem.1.conv / stem.1.bn
    stem.6 / stem.7          conv1.6 / bn1      stem.2.conv / stem.2.bn
    layerN.M.conv1 ... bn3   same               same
    layerN.0.downsample.1/2  same               .0/.1 in stride-1 stages
      (conv, norm; .0 is the                      (no pool there, so the
      avg-pool, 1x1 or not)                       conv and norm shift)
    -                        fc (classifier)    head.fc (classifier)

Detector, segmentor and classifier checkpoints (mmdet, mmseg, mmpretrain)
nest the backbone under ``backbone.``; training wrappers add ``module.``.
Official and timm files are indistinguishable (timm ships the official
files for most variants), so both are handled as ``'official'``.
"""
import re
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional, Tuple

from torch import Tensor

#: Layouts :func:`convert_state_dict` reads. ``'resnest_mm'`` is ours, which
#: is also mmdet's and mmseg's backbone layout; ``'official'`` is timm's too.
SOURCE_FORMATS = ('resnest_mm', 'official', 'mmpretrain')
#: Other names users know the layouts by.
FORMAT_ALIASES = {'mmdet': 'resnest_mm', 'mmseg': 'resnest_mm',
                  'mmcls': 'mmpretrain', 'timm': 'official'}

#: Parameters and buffers of one ResNeSt bottleneck, named the same in every
#: layout. ``downsample.0`` holds weights only in mmpretrain (see above).
BLOCK_KEY = re.compile(
    r'^layer\d+\.\d+\.(conv1|bn1|conv2\.(conv|bn0|fc1|bn1|fc2)|conv3|bn3|'
    r'downsample\.[12])\.(weight|bias|running_mean|running_var|'
    r'num_batches_tracked)$')

# (source pattern, our replacement) for the stem, per layout.
_STEM_MAPS: Dict[str, List[Tuple[str, str]]] = {
    'official': [(r'^conv1\.(0|1|3|4|6)\.', r'stem.\1.'),
                 (r'^bn1\.', 'stem.7.')],
    'mmpretrain': [(r'^stem\.0\.conv\.', 'stem.0.'),
                   (r'^stem\.0\.bn\.', 'stem.1.'),
                   (r'^stem\.1\.conv\.', 'stem.3.'),
                   (r'^stem\.1\.bn\.', 'stem.4.'),
                   (r'^stem\.2\.conv\.', 'stem.6.'),
                   (r'^stem\.2\.bn\.', 'stem.7.')],
}
# Classifier heads: dropped, a backbone has none.
_HEAD_KEYS = {'official': re.compile(r'^fc\.'),
              'mmpretrain': re.compile(r'^(head\.)?fc\.')}


@dataclass
class Conversion:
    """The result of mapping a state dict into our layout.

    Attributes:
        state_dict: Tensors under our (mmdet's) keys.
        source_format: Their layout, one of :data:`SOURCE_FORMATS`.
        dropped: Source key -> why it was left out on purpose (classifier
            head, a detector's neck, ...).
        unplaced: Source entries the map has no place for, never silently
            lost: loading reports them as unexpected keys.
    """

    state_dict: Dict[str, Tensor]
    source_format: str
    dropped: Dict[str, str] = field(default_factory=dict)
    unplaced: Dict[str, Tensor] = field(default_factory=dict)


def extract_state_dict(checkpoint: Mapping) -> Mapping[str, Tensor]:
    """The tensors of a loaded checkpoint file.

    mmengine and timm training checkpoints keep them under ``'state_dict'``,
    some others under ``'model'``; release files are the state dict itself.
    """
    for key in ('state_dict', 'model'):
        inner = checkpoint.get(key)
        if isinstance(inner, Mapping) and inner:
            return inner
    return checkpoint


def _is_backbone_key(key: str) -> bool:
    return key.startswith(('stem.', 'conv1.', 'bn1.', 'layer'))


def split_backbone(state_dict: Mapping[str, Tensor]
                   ) -> Tuple[Dict[str, Tensor], Dict[str, str]]:
    """Keep the backbone part of a state dict; say what else was dropped.

    Strips a ``module.`` wrapper prefix. A detector's, segmentor's or
    classifier's dict (``backbone.*`` beside ``neck.*``, ``decode_head.*``,
    ``head.*``) is reduced to its ``backbone.*`` entries, unprefixed.
    """
    sd = {(k[len('module.'):] if k.startswith('module.') else k): v
          for k, v in state_dict.items()}
    if any(_is_backbone_key(k) for k in sd) or not any(
            k.startswith('backbone.') for k in sd):
        return sd, {}
    kept, dropped = {}, {}
    for key, value in sd.items():
        if key.startswith('backbone.'):
            kept[key[len('backbone.'):]] = value
        else:
            dropped[key] = (f'not part of the backbone ({key.split(".")[0]} '
                            'of the whole model)')
    return kept, dropped


def detect_format(state_dict: Mapping[str, Tensor]) -> str:
    """Tell the layout of an (unwrapped) backbone state dict.

    Returns one of ``'official'`` (also timm), ``'mmpretrain'``, or
    ``'resnest_mm'`` (ours, mmdet, mmseg); raises ``ValueError`` for a
    dict with no ResNeSt stem or stage keys.
    """
    keys = list(state_dict)
    if any(k.startswith(('conv1.', 'bn1.')) for k in keys):
        return 'official'
    if any(k.startswith('stem.0.conv.') for k in keys) or any(
            re.match(r'^layer\d+\.\d+\.downsample\.0\.weight$', k)
            for k in keys):  # ours has the avg-pool (no weights) there
        return 'mmpretrain'
    if any(k.startswith(('stem.', 'layer')) for k in keys):
        return 'resnest_mm'
    raise ValueError(
        f'cannot tell the layout of a state dict whose keys start with '
        f'{sorted(keys)[:5]}: expected the ResNeSt keys of one of '
        f'{SOURCE_FORMATS} (stem.* / conv1.* and layer1.* ...)')


def normalize_format(source_format: str) -> str:
    """Map user-facing names (``'timm'``, ``'mmdet'``, ...) to a layout."""
    name = FORMAT_ALIASES.get(source_format, source_format)
    if name not in SOURCE_FORMATS and name != 'auto':
        known = sorted(set(SOURCE_FORMATS) | set(FORMAT_ALIASES))
        raise ValueError(f'source_format={source_format!r} is not a known '
                         f"layout; choose 'auto' or one of {known}")
    return name


def _shift_unpooled_downsample(
        sd: Mapping[str, Tensor]) -> Dict[str, Tensor]:
    """mmpretrain: move ``downsample.0/1`` (conv, norm) to our ``.1/.2``.

    mmpretrain puts no avg-pool in stride-1 stages, so its shortcut conv sits
    at index 0 there; ours always has the pool (1x1, an identity) at 0.
    """
    conv_at_0 = re.compile(r'^(layer\d+\.\d+)\.downsample\.0\.weight$')
    unpooled = {m.group(1) for m in map(conv_at_0.match, sd) if m}
    entry = re.compile(r'^(layer\d+\.\d+)\.downsample\.([01])\.(.*)$')

    def moved(key: str) -> str:
        m = entry.match(key)
        if m and m.group(1) in unpooled:
            index = int(m.group(2)) + 1
            return f'{m.group(1)}.downsample.{index}.{m.group(3)}'
        return key

    return {moved(k): v for k, v in sd.items()}


def _rename(key: str, rules: List[Tuple[str, str]]) -> Optional[str]:
    for pattern, replacement in rules:
        if re.match(pattern, key):
            return re.sub(pattern, replacement, key)
    return None


def _require_split_attention(state_dict: Mapping[str, Tensor],
                             source_format: str) -> None:
    if not any('.conv2.fc1.' in k for k in state_dict):
        raise ValueError(
            f'the {source_format} state dict has no split-attention keys '
            '(layer*.conv2.fc1.*): it is not a ResNeSt checkpoint (a plain '
            'ResNet/ResNeXt cannot initialise ResNeSt)')


def convert_state_dict(state_dict: Mapping[str, Tensor],
                       source_format: str = 'auto') -> Conversion:
    """Map a backbone state dict of any supported layout into ours.

    Args:
        state_dict: A backbone's tensors, e.g. from :func:`split_backbone`.
        source_format: ``'auto'`` (detect) or a layout name (``'official'``,
            ``'timm'``, ``'mmpretrain'``, ``'mmdet'``, ``'mmseg'``, ...); a
            name that contradicts the keys is an error.

    Our own layout passes through unchanged (mmdet plugin/DCN keys included).
    Foreign layouts map key by key; classifier heads go to ``dropped``, keys
    the map does not know to ``unplaced``.
    """
    wanted = normalize_format(source_format)
    found = detect_format(state_dict)
    if wanted not in ('auto', found):
        raise ValueError(
            f'source_format={source_format!r} but the keys are in the {found} '
            f'layout (e.g. {sorted(state_dict)[:3]}); pass '
            f"source_format='auto' or {found!r}")
    if found == 'resnest_mm':
        return Conversion(dict(state_dict), found)
    _require_split_attention(state_dict, found)
    if found == 'mmpretrain':
        state_dict = _shift_unpooled_downsample(state_dict)
    conv = Conversion({}, found)
    for key, value in state_dict.items():
        ours = _rename(key, _STEM_MAPS[found])
        if ours is None and BLOCK_KEY.match(key):
            ours = key
        if ours is not None:
            conv.state_dict[ours] = value
        elif _HEAD_KEYS[found].match(key):
            conv.dropped[key] = 'classifier head'
        else:
            conv.unplaced[key] = value
    return conv


def convert_checkpoint(checkpoint: Mapping,
                       source_format: str = 'auto') -> Conversion:
    """:func:`convert_state_dict` for a whole loaded checkpoint file.

    Unwraps ``state_dict``/``model`` entries and ``module.``/``backbone.``
    prefixes first; what the unwrapping leaves out is listed in ``dropped``.
    """
    backbone, dropped = split_backbone(extract_state_dict(checkpoint))
    conversion = convert_state_dict(backbone, source_format)
    conversion.dropped = {**dropped, **conversion.dropped}
    return conversion


def describe_dropped(dropped: Mapping[str, str]) -> str:
    """``'classifier head (fc.weight, fc.bias)'``, one group per reason."""
    by_reason: Dict[str, List[str]] = {}
    for key, reason in dropped.items():
        by_reason.setdefault(reason, []).append(key)
    return '; '.join(
        f"{reason} ({', '.join(keys[:3])}{', ...' if len(keys) > 3 else ''})"
        for reason, keys in by_reason.items()) or 'nothing'
