"""Convert a checkpoint file of any ResNeSt release layout into ours.

The command line is ``tools/model_converters/convert_weights.py``; this is
what it runs. SRC is read without running pickled code (``weights_only``, or
safetensors); its layout is detected, the backbone part kept, and the result
loaded with ``strict=True`` into the target backbone before DST is written as
``{'meta', 'state_dict'}``.
"""
from collections import OrderedDict
from typing import List, Optional, Tuple

import torch

from resnest_mm.models import ARCH_PRESETS, ResNeSt
from resnest_mm.weights.arch_check import (ARCH_METADATA_KEY,
                                           ArchMismatchError, ArchSummary,
                                           check_fits, summarize_arch)
from resnest_mm.weights.formats import (FORMAT_ALIASES, convert_checkpoint,
                                        describe_dropped)
from resnest_mm.weights.files import read_weights
from resnest_mm.weights.load_hook import model_avd_first


def guess_arch(summary: ArchSummary) -> Tuple[dict, List[str]]:
    """ResNeSt arguments for weights whose variant nobody named, and notes.

    A named variant with the same shapes wins. ``avd_first`` is invisible
    in the weights; where presets disagree on it, the non-"fast" one is
    taken and a note says how to choose the other.
    """
    names = summary.preset_names()
    if names:
        plain = [n for n in names if not ARCH_PRESETS[n].avd_first]
        notes = []
        if plain and len(plain) < len(names):
            fast = [n for n in names if n not in plain]
            notes.append(f'the weights fit {plain[0]} and {fast[0]}, which '
                         'differ only in avd_first; taking '
                         f'{plain[0]}, pass --arch {fast[0]} for the other')
        return dict(arch=(plain or names)[0]), notes
    args = dict(depth=summary.depth, stem_channels=summary.stem_channels,
                radix=summary.radix, groups=summary.groups,
                base_width=summary.base_width,
                in_channels=summary.in_channels or 3)
    return args, [f'no named variant has these shapes; building {args}']


def convert_file(src: str, dst: str, source_format: str = 'auto',
            arch: Optional[str] = None, model_args: Optional[dict] = None,
            allow_unplaced: bool = False) -> List[str]:
    """Convert SRC into DST; return the report lines.

    Raises ``SystemExit`` with the reason for keys without a place (unless
    ``allow_unplaced``) and for weights of another variant.
    """
    source_format = FORMAT_ALIASES.get(source_format, source_format)
    conversion = convert_checkpoint(read_weights(src), source_format)
    lines = [f'{src}: {conversion.source_format} layout, kept '
             f'{len(conversion.state_dict)} tensors, left out '
             f'{len(conversion.dropped)}: '
             f'{describe_dropped(conversion.dropped)}']
    if conversion.unplaced and not allow_unplaced:
        raise SystemExit(
            f'error: {len(conversion.unplaced)} keys of {src} have no place '
            f'in ResNeSt: {sorted(conversion.unplaced)}; nothing written '
            '(pass --allow-unplaced to drop them)')
    if conversion.unplaced:
        lines.append(f'dropped without a place: {sorted(conversion.unplaced)}')

    summary = summarize_arch(conversion.state_dict)
    if arch is None and not model_args:
        target, notes = guess_arch(summary)
        lines += [f'note: {n}' for n in notes]
        avd_first_known = not notes
    else:
        target = dict(model_args or {}, arch=arch)
        avd_first_known = arch is not None or 'avd_first' in target
    model = ResNeSt(**target)
    try:
        unbuilt = check_fits(model.state_dict(), conversion.state_dict,
                             model_avd_first(model))
    except ArchMismatchError as err:
        raise SystemExit(f'error: {err}') from None
    state_dict = OrderedDict((k, v) for k, v in conversion.state_dict.items()
                             if k not in unbuilt)
    model.load_state_dict(state_dict, strict=True)

    # What the weights cannot show, recorded where the backbone's load hook
    # checks it: only what someone actually chose.
    recorded = dict(arch=target.get('arch'))
    if avd_first_known:
        recorded['avd_first'] = model_avd_first(model)
    state_dict._metadata = OrderedDict({'': {ARCH_METADATA_KEY: recorded}})
    meta = dict(source=src, source_format=conversion.source_format,
                target=target, dropped=sorted(conversion.dropped),
                unbuilt=sorted(unbuilt))
    torch.save(dict(meta=meta, state_dict=state_dict), dst)
    lines.append(f'target: {target.get("arch") or summary.describe()} '
                 f'({summarize_arch(model.state_dict()).describe()}, '
                 f'avd_first={model_avd_first(model)}); wrote {dst}')
    return lines
