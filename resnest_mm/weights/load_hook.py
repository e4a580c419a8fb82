"""Let ``ResNeSt.load_state_dict`` take a checkpoint of any supported layout.

:func:`convert_foreign_weights` is a ``load_state_dict`` pre-hook. mmengine's
``init_cfg=dict(type='Pretrained', checkpoint=PATH)`` and ``load_checkpoint``
both end in ``load_state_dict``, so with the hook a config can point at an
official, timm, mmpretrain, mmdet or mmseg file directly: the hook finds the
backbone part, renames the keys into ours, drops classifier heads, and
refuses weights of another variant (:func:`~.arch_check.check_fits`) where
mmengine would only warn and leave layers random.

It works wherever the backbone sits (alone, or as ``backbone`` inside a
detector): torch hands it the keys under its own prefix, and the module's
children read the renamed keys afterwards. A dict already in our layout is
only checked.
"""
from typing import Dict, List, Optional

from mmengine.logging import print_log
from torch import Tensor, nn

from resnest_mm.weights.arch_check import ARCH_METADATA_KEY, check_fits
from resnest_mm.weights.formats import (convert_state_dict,
                                        describe_dropped, detect_format,
                                        split_backbone)


def model_avd_first(module: nn.Module) -> Optional[bool]:
    """``avd_first`` of the blocks that pool, ``None`` if none pools."""
    values = {m.avd_first for m in module.modules()
              if getattr(m, 'avg_down_stride', False)
              and isinstance(getattr(m, 'avd_first', None), bool)}
    return values.pop() if len(values) == 1 else None


def convert_foreign_weights(module: nn.Module, state_dict: Dict[str, Tensor],
                            prefix: str, local_metadata: dict, strict: bool,
                            missing_keys: List[str],
                            unexpected_keys: List[str],
                            error_msgs: List[str]) -> None:
    """Rewrite ``state_dict[prefix + key]`` into our layout, in place.

    Signature of ``nn.Module.register_load_state_dict_pre_hook``. Keys it
    cannot place stay as they are, so loading reports them as unexpected.
    Raises :class:`~.arch_check.ArchMismatchError` for another variant's
    weights and ``ValueError`` for a checkpoint that is not a ResNeSt.
    """
    own = {k[len(prefix):]: v for k, v in state_dict.items()
           if k.startswith(prefix)}
    backbone, dropped = split_backbone(own)
    try:
        source_format = detect_format(backbone)
    except ValueError:  # no ResNeSt keys at all: let torch list them
        return
    conversion = convert_state_dict(backbone, source_format)
    dropped.update(conversion.dropped)
    dropped.update(check_fits(module.state_dict(), conversion.state_dict,
                              model_avd_first(module),
                              local_metadata.get(ARCH_METADATA_KEY)))
    if source_format == 'resnest_mm' and not dropped:
        return
    kept = {k: v for k, v in conversion.state_dict.items() if k not in dropped}
    for key in own:
        del state_dict[prefix + key]
    for key, value in {**kept, **conversion.unplaced}.items():
        state_dict[prefix + key] = value
    print_log(
        f'ResNeSt: loading {len(kept)} tensors from the {source_format} '
        f'layout; left out {len(dropped)}: {describe_dropped(dropped)}',
        logger='current')
