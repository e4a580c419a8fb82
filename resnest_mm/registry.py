"""Registry glue: make ``type='ResNeSt'`` build our backbone everywhere.

mmdet and mmseg each register a built-in ``ResNeSt`` in their own ``MODELS``
registry when their ``models`` package is imported. We import those packages
first (so their registration cannot later collide with ours) and then replace
the entry with ours. mmengine's root ``MODELS`` gets it too, so the backbone is
buildable when neither toolbox is installed.
"""
import importlib
from typing import List

from mmengine.registry import MODELS as MMENGINE_MODELS

from resnest_mm.models import ResNeSt

#: Toolboxes whose ``MODELS`` registry gets our ``ResNeSt`` when installed.
TOOLBOXES = ('mmdet', 'mmseg')


def register_resnest() -> List[str]:
    """Register :class:`ResNeSt` as ``'ResNeSt'``; return the toolboxes done."""
    MMENGINE_MODELS.register_module('ResNeSt', module=ResNeSt, force=True)
    registered = []
    for toolbox in TOOLBOXES:
        try:
            models = importlib.import_module(f'{toolbox}.registry').MODELS
        except ModuleNotFoundError as err:
            if err.name != toolbox:  # installed but broken: say so
                raise
            continue
        models.import_from_location()
        models.register_module('ResNeSt', module=ResNeSt, force=True)
        registered.append(toolbox)
    return registered
