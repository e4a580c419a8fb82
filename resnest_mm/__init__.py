"""resnest_mm: ResNeSt (Split-Attention Networks) for mmdet 3.x and mmseg 1.x.

Importing the package (or ``custom_imports=dict(imports=['resnest_mm'])`` in a
config) registers our ``ResNeSt`` as ``type='ResNeSt'`` in mmdet's, mmseg's and
mmengine's ``MODELS`` registries, and lets ``torch.load(weights_only=True)``
read mmengine checkpoints so ``--resume`` works under torch >= 2.6.
"""
from resnest_mm.checkpoint_types import allow_mmengine_checkpoint_types
from resnest_mm.models import ResNeSt
from resnest_mm.registry import register_resnest
from resnest_mm.version import __version__

allow_mmengine_checkpoint_types()
register_resnest()

__all__ = ['ResNeSt', '__version__']
