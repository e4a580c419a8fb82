"""ResNeSt layers and backbone (no registration here: see ``resnest_mm.registry``)."""
from resnest_mm.models.arch_presets import ARCH_PRESETS, STAGE_BLOCKS
from resnest_mm.models.bottleneck import ResNeStBottleneck
from resnest_mm.models.drop_block import DropBlock2d
from resnest_mm.models.resnest import ResNeSt
from resnest_mm.models.split_attention import SplitAttentionConv2d

__all__ = [
    'ARCH_PRESETS', 'STAGE_BLOCKS', 'DropBlock2d', 'ResNeSt',
    'ResNeStBottleneck', 'SplitAttentionConv2d'
]
