"""resnest_mm: ResNeSt (Split-Attention Networks) for mmdet 3.x, mmseg 1.x
and MMPretrain 1.x.

Importing the package (or ``custom_imports=dict(imports=['resnest_mm'])`` in a
config) registers our ``ResNeSt`` as ``type='ResNeSt'`` in mmdet's, mmseg's,
MMPretrain's (those installed) and mmengine's ``MODELS`` registries, lets
``torch.load(weights_only=True)`` read mmengine checkpoints so ``--resume``
works under torch >= 2.6, and adds the ``official://`` and ``timm://``
checkpoint schemes (``resnest_mm.weights``; mmengine's URL schemes then
unpickle with ``weights_only=True`` too) and the
``CheckSegMap`` label check to mmseg's ``TRANSFORMS``, and
``StopOnInvalidLossHook`` (stop a diverged run, say why) and the other
hooks of ``resnest_mm.engine`` to mmengine's ``HOOKS``.
"""
from resnest_mm.checkpoint_types import allow_mmengine_checkpoint_types
from resnest_mm.models import ResNeSt
from resnest_mm.registry import (register_hooks, register_resnest,
                                 register_seg_transforms)
from resnest_mm.version import __version__
from resnest_mm.weights import register_weight_schemes

allow_mmengine_checkpoint_types()
register_resnest()
register_seg_transforms()
register_hooks()
register_weight_schemes()

__all__ = ['ResNeSt', '__version__']
