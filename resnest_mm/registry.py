"""Registry glue: make ``type='ResNeSt'`` build our backbone everywhere.

mmdet, mmseg and MMPretrain each register a built-in ``ResNeSt`` in their own
``MODELS`` registry when their ``models`` package is imported. We import
those packages first (so their registration cannot later collide with ours)
and then replace the entry with a builder of ours that fills every argument
the config leaves out with *that toolbox's* default (:data:`TOOLBOX_DEFAULTS`)
and takes the arguments only that toolbox's class has
(:data:`TOOLBOX_ONLY_ARGS`), so an existing mmdet, mmseg or MMPretrain config
behaves as it did with the toolbox's own class. mmengine's root ``MODELS``
gets our class as it is, so the backbone is buildable when no toolbox is
installed. Our segmentation pipeline steps (``CheckSegMap``) go into mmseg's
``TRANSFORMS``, our hooks (``StopOnInvalidLossHook``,
``BackbonePrecisionHook``, ``DropBlockScheduleHook``) into mmengine's
``HOOKS``.
"""
import importlib
import inspect
import warnings
from types import ModuleType
from typing import Any, Callable, Dict, List, Optional

from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import MODELS as MMENGINE_MODELS

from resnest_mm.datasets import CheckSegMap
from resnest_mm.engine.backbone_precision import BackbonePrecisionHook
from resnest_mm.engine.drop_block_schedule import DropBlockScheduleHook
from resnest_mm.engine.invalid_loss import StopOnInvalidLossHook
from resnest_mm.models import ResNeSt

#: Toolboxes whose ``MODELS`` registry gets our ``ResNeSt`` when installed.
TOOLBOXES = ('mmdet', 'mmseg', 'mmpretrain')
#: Where a toolbox's own ``ResNeSt`` defaults to another value than our class:
#: all three use a 64-channel stem at every depth (ours: the official 64 up
#: to depth 50, 128 from 101), mmseg and MMPretrain train BatchNorm
#: (``norm_eval=False``), and MMPretrain's classifiers read the last stage
#: only. ``tests/test_toolbox_defaults.py`` and
#: ``tests/test_mmpretrain_registry.py`` check every argument of the classes.
TOOLBOX_DEFAULTS: Dict[str, Dict[str, Any]] = {
    'mmdet': dict(stem_channels=64, norm_eval=True),
    'mmseg': dict(stem_channels=64, norm_eval=False),
    'mmpretrain': dict(stem_channels=64, norm_eval=False, out_indices=(3, )),
}
#: Arguments only a toolbox's own ``ResNeSt`` takes -> their default there;
#: :func:`toolbox_only_args` turns them into ours. MMPretrain's ResNet names
#: ``base_width`` ``width_per_group`` and also takes ``expansion`` and
#: ``drop_path_rate``.
TOOLBOX_ONLY_ARGS: Dict[str, Dict[str, Any]] = {
    'mmdet': {},
    'mmseg': {},
    'mmpretrain': dict(width_per_group=4, expansion=None, drop_path_rate=0.0),
}
#: Arguments a named ``arch`` preset decides: with ``arch=``, the preset's
#: value wins over a toolbox default (no toolbox knows ``arch``).
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


def toolbox_only_args(toolbox: str, kwargs: Dict[str, Any]) -> None:
    """Replace, in place, the arguments of :data:`TOOLBOX_ONLY_ARGS` that
    ``kwargs`` gives by what they mean for our class.

    MMPretrain's ``width_per_group`` is our ``base_width`` (the same rule:
    ``groups * width * planes / 64`` channels in the 3x3 conv); its
    ``expansion`` builds a ResNeSt bottleneck only at 4 (``None``: the
    block's 4); its ``drop_path_rate`` reaches the blocks, whose ``forward``
    never applies it, so it changes nothing there nor here.
    """
    own = TOOLBOX_ONLY_ARGS[toolbox]
    given = {name: kwargs.pop(name) for name in list(kwargs) if name in own}
    if 'width_per_group' in given:
        if kwargs.get('base_width') is not None:
            raise ValueError(
                f"width_per_group={given['width_per_group']!r} and "
                f"base_width={kwargs['base_width']!r}: both name the width "
                "per group; give one")
        kwargs['base_width'] = given['width_per_group']
    if given.get('expansion') not in (None, 4):
        raise ValueError(
            f"expansion={given['expansion']!r}: a ResNeSt bottleneck "
            'expands its width 4x; leave expansion out (or give 4)')
    if given.get('drop_path_rate'):
        warnings.warn(
            f"drop_path_rate={given['drop_path_rate']!r} has no effect: "
            "MMPretrain's ResNeSt blocks never apply it, nor do ours; use "
            'drop_block=dict(prob=..., block_size=...) to regularise')


def toolbox_resnest(toolbox: str) -> Callable[..., ResNeSt]:
    """A ``ResNeSt`` builder with ``toolbox``'s defaults, for its ``MODELS``.

    It returns a plain :class:`ResNeSt`; only the arguments the caller leaves
    out differ from our class's (see :data:`TOOLBOX_DEFAULTS`), and it also
    takes the toolbox's own arguments (:data:`TOOLBOX_ONLY_ARGS`). Its
    signature shows those defaults and arguments.
    """
    defaults = TOOLBOX_DEFAULTS[toolbox]

    def build(**kwargs: Any) -> ResNeSt:
        toolbox_only_args(toolbox, kwargs)
        for name, value in defaults.items():
            if name in PRESET_ARGS and kwargs.get('arch') is not None:
                continue
            kwargs.setdefault(name, value)
        return ResNeSt(**kwargs)

    signature = inspect.signature(ResNeSt)
    build.__signature__ = signature.replace(parameters=[
        p.replace(default=defaults.get(name, p.default))
        for name, p in signature.parameters.items()
    ] + [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=value)
        for name, value in TOOLBOX_ONLY_ARGS[toolbox].items()
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
    """Register :class:`StopOnInvalidLossHook`,
    :class:`BackbonePrecisionHook` and :class:`DropBlockScheduleHook` in
    mmengine's root ``HOOKS``.

    mmdet's, mmseg's and MMPretrain's ``HOOKS`` look names up in their
    parent, the root, so configs of any of these ``default_scope`` values
    (and the toolboxes' own tools, through ``custom_imports``) can list them.
    """
    for hook in (StopOnInvalidLossHook, BackbonePrecisionHook,
                 DropBlockScheduleHook):
        MMENGINE_HOOKS.register_module(hook.__name__, module=hook,
                                       force=True)
