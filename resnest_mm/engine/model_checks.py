"""Refuse, before anything is built, a classifier whose head cannot take
what the ResNeSt backbone gives it.

MMPretrain's ``LinearClsHead`` builds ``nn.Linear(in_channels, ...)`` from the
config; with another backbone width than the config's head assumes (a toy
``base_channels=32`` backbone under a ResNeSt-50 head, a changed
``out_indices``), the run starts and then fails in its first forward with
torch's ``mat1 and mat2 shapes cannot be multiplied``. ``tools/train.py`` and
``tools/test.py`` call :func:`check_classifier_channels` first, which names
the config keys and both channel counts instead.
"""
from typing import Optional

from mmengine.config import Config, ConfigDict
from mmengine.registry import DefaultScope

#: Necks that pool each level and keep its channels, so the head reads the
#: backbone's last level as it is (MMPretrain's names).
CHANNEL_KEEPING_NECKS = ('GlobalAveragePooling', 'GeneralizedMeanPooling')


def _type_name(module_cfg: ConfigDict) -> str:
    kind = module_cfg.get('type')
    return getattr(kind, '__name__', str(kind)).split('.')[-1]


def backbone_last_channels(cfg: Config) -> Optional[int]:
    """Channels of the last level the config's ResNeSt backbone returns;
    ``None`` for other backbones. The backbone is built (no weights loaded)
    through the config's toolbox, so its defaults apply."""
    backbone_cfg = cfg.model.get('backbone')
    if not backbone_cfg or _type_name(backbone_cfg) != 'ResNeSt':
        return None
    from mmengine.registry import MODELS
    backbone_cfg = dict(backbone_cfg, init_cfg=None)
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope')):
        backbone = MODELS.build(backbone_cfg)
    return backbone.out_channels[-1]


def check_classifier_channels(cfg: Config) -> None:
    """Raise ``ValueError`` when a classification config's head (or neck)
    ``in_channels`` differs from the channels of the backbone's last level.

    Detection and segmentation configs, backbones other than ResNeSt and
    necks that change the channels without stating ``in_channels`` are left
    alone.
    """
    if cfg.get('default_scope') != 'mmpretrain' or 'model' not in cfg:
        return
    neck, head = cfg.model.get('neck'), cfg.model.get('head')
    if neck and 'in_channels' in neck:
        key, reader = 'model.neck.in_channels', neck
    elif head and 'in_channels' in head and (
            not neck or _type_name(neck) in CHANNEL_KEEPING_NECKS):
        key, reader = 'model.head.in_channels', head
    else:
        return
    channels = backbone_last_channels(cfg)
    if channels is None or reader.in_channels == channels:
        return
    out_indices = getattr(cfg.model.backbone, 'out_indices', None)
    levels = f'out_indices={tuple(out_indices)}' if out_indices else \
        'its default out_indices'
    raise ValueError(
        f'{key}={reader.in_channels}, but the ResNeSt backbone\'s last level '
        f'({levels}) has {channels} channels: set {key}={channels}, or '
        'change the backbone (base_channels, out_indices) to give '
        f'{reader.in_channels}')
