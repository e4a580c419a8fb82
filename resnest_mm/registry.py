"""Registry glue: make ``type='ResNeSt'`` build our backbone everywhere.

mmdet and mmseg each register a built-in ``ResNeSt`` in their own ``MODELS``
registry when their ``models`` package is imported. We import those packages
first (so their registration cannot later collide with ours) and then replace
the entry with a builder of ours that fills every argument the config leaves
out with *that toolbox's* default (:data:`TOOLBOX_DEFAULTS`), so an existing
mmdet or mmseg config behaves as it did with the toolbox's own class.
mmengine's root ``MODELS`` gets our class as it is, so the backbone is
buildable when neither toolbox is installed. Our segmentation pipeline steps
(``CheckSegMap``) go into mmseg's ``TRANSFORMS``, our hooks
(``StopOnInvalidLossHook``, ``BackbonePrecisionHook``) into mmengine's
``HOOKS``.
"""
import importlib
import inspect
from types import ModuleType
from typing import Any, Callable, Dict, List, Optional

from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import MODELS as MMENGINE_MODELS

from resnest_mm.datasets import CheckSegMap
from resnest_mm.engine.backbone_precision import BackbonePrecisionHook
from resnest_mm.engine.invalid_loss import StopOnInvalidLossHook
from resnest_mm.models import ResNeSt

#: Toolboxes whose ``MODELS`` registry gets our ``ResNeSt`` when installed.
TOOLBOXES = ('mmdet', 'mmseg')
#: Where a toolbox's own ``ResNeSt`` defaults to another value than our class:
#: both use a 64-channel stem at every depth (ours: the official 64 up to
#: depth 50, 128 from 101), and mmseg trains BatchNorm (``norm_eval=False``).
#: ``tests/test_toolbox_defaults.py`` checks every argument of both classes.
TOOLBOX_DEFAULTS: Dict[str, Dict[str, Any]] = {
    'mmdet': dict(stem_channels=64, norm_eval=True),
    'mmseg': dict(stem_channels=64, norm_eval=False),
}
#: Arguments a named ``arch`` preset decides: with ``arch=``, the preset's
#: value wins over a toolbox default (neither toolbox knows ``arch``).
PRESET_ARGS = ('radix', 'groups', 'base_width', 'avd_first', 'stem_channels')
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


def toolbox_resnest(toolbox: str) -> Callable[..., ResNeSt]:
    """A ``ResNeSt`` builder with ``toolbox``'s defaults, for its ``MODELS``.

    It returns a plain :class:`ResNeSt`; only the arguments the caller leaves
    out differ from our class's (see :data:`TOOLBOX_DEFAULTS`). Its signature
    shows those defaults.
    """
    defaults = TOOLBOX_DEFAULTS[toolbox]

    def build(**kwargs: Any) -> ResNeSt:
        for name, value in defaults.items():
            if name in PRESET_ARGS and kwargs.get('arch') is not None:
                continue
            kwargs.setdefault(name, value)
        return ResNeSt(**kwargs)

    signature = inspect.signature(ResNeSt)
    build.__signature__ = signature.replace(parameters=[
        p.replace(default=defaults.get(name, p.default))
        for name, p in signature.parameters.items()
    ])
    build.__name__ = build.__qualname__ = f'{toolbox}_resnest'
    build.__doc__ = (f'ResNeSt with {toolbox}\'s defaults for the arguments '
                     f'a config leaves out: {defaults}.')
    return build


def register_resnest() -> List[str]:
    """Register ``'ResNeSt'`` everywhere; return the toolboxes done."""
    MMENGINE_MODELS.register_module('ResNeSt', module=ResNeSt, force=True)
    registered = []
    for toolbox in TOOLBOXES:
        registry = _toolbox_registry(toolbox)
        if registry is None:
            continue
        models = registry.MODELS
        models.import_from_location()
        models.register_module('ResNeSt', module=toolbox_resnest(toolbox),
                               force=True)
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


def register_hooks() -> None:
    """Register :class:`StopOnInvalidLossHook` and
    :class:`BackbonePrecisionHook` in mmengine's root ``HOOKS``.

    mmdet's and mmseg's ``HOOKS`` look names up in their parent, the root, so
    configs of either ``default_scope`` (and mmdet's and mmseg's own tools,
    through ``custom_imports``) can list it.
    """
    MMENGINE_HOOKS.register_module('StopOnInvalidLossHook',
                                   module=StopOnInvalidLossHook, force=True)
    MMENGINE_HOOKS.register_module('BackbonePrecisionHook',
                                   module=BackbonePrecisionHook, force=True)
