"""Pretrained weights: every ResNeSt release layout, named weights, checks.

- ``formats``: which layout a checkpoint is in, and the key maps into ours.
- ``arch_check``: read the variant off the weights; refuse a mismatch.
- ``files``: read ``.pth``/``.safetensors`` files without running pickle.
- ``cache``: fetch a URL into torch hub's cache (``RESNEST_MM_OFFLINE``), or
  an error naming the URL, the path and a command that fetches it.
- ``schemes``: ``official://`` and ``timm://`` names for mmengine's loader.
- ``safe_urls``: mmengine's URL schemes (``open-mmlab://``, ``https://``,
  ...), unpickling with ``weights_only=True``.
- ``load_hook``: the ``load_state_dict`` pre-hook that makes
  ``init_cfg=dict(type='Pretrained', checkpoint=...)`` take any layout.
"""
from resnest_mm.weights.arch_check import (ArchMismatchError, check_fits,
                                           summarize_arch)
from resnest_mm.weights.cache import OFFLINE_ENV
from resnest_mm.weights.files import read_weights
from resnest_mm.weights.formats import (SOURCE_FORMATS, Conversion,
                                        convert_checkpoint, convert_state_dict,
                                        detect_format)
from resnest_mm.weights.load_hook import convert_foreign_weights
from resnest_mm.weights.schemes import NAMED_WEIGHTS, register_weight_schemes

__all__ = [
    'ArchMismatchError', 'Conversion', 'NAMED_WEIGHTS', 'OFFLINE_ENV',
    'SOURCE_FORMATS', 'check_fits', 'convert_checkpoint',
    'convert_foreign_weights', 'convert_state_dict', 'detect_format',
    'read_weights', 'register_weight_schemes', 'summarize_arch'
]
