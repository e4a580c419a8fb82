"""Registry glue: make ``type='ResNeSt'`` build our backbone everywhere.

mmdet and mmseg each register a built-in ``ResNeSt`` in their own ``MODELS``
registry when their ``models`` package is imported. We import those packages
first (so their registration cannot later collide with ours) and then replace
the entry with ours. mmengine's root ``MODELS`` gets it too, so the backbone is
buildable when neither toolbox is installed. Our segmentation pipeline steps
(``CheckSegMap``) go into mmseg's ``TRANSFORMS``.
"""
import importlib
from types import ModuleType
from typing import List, Optional

from mmengine.registry import MODELS as MMENGINE_MODELS

from resnest_mm.datasets import CheckSegMap
from resnest_mm.models import ResNeSt

#: Toolboxes whose ``MODELS`` registry gets our ``ResNeSt`` when installed.
TOOLBOXES = ('mmdet', 'mmseg')
#: Pipeline steps registered in mmseg's ``TRANSFORMS``, by name.
SEG_TRANSFORMS = {'CheckSegMap': CheckSegMap}


def _toolbox_registry(toolbox: str) -> Optional[ModuleType]:
    """``<toolbox>.registry``; ``None`` if the toolbox is not installed."""
    try:
        return importlib.import_module(f'{toolbox}.registry')
    except ModuleNotFoundError as err:
        if err.name != toolbox:  # installed but broken: say so
            raise
        return None


def register_resnest() -> List[str]:
    """Register :class:`ResNeSt` as ``'ResNeSt'``; return the toolboxes done."""
    MMENGINE_MODELS.register_module('ResNeSt', module=ResNeSt, force=True)
    registered = []
    for toolbox in TOOLBOXES:
        registry = _toolbox_registry(toolbox)
        if registry is None:
            continue
        models = registry.MODELS
        models.import_from_location()
        models.register_module('ResNeSt', module=ResNeSt, force=True)
        registered.append(toolbox)
    return registered


def register_seg_transforms() -> bool:
    """Register :data:`SEG_TRANSFORMS` in mmseg; ``False`` without mmseg."""
    registry = _toolbox_registry('mmseg')
    if registry is None:
        return False
    for name, transform in SEG_TRANSFORMS.items():
        registry.TRANSFORMS.register_module(name, module=transform,
                                            force=True)
    return True
