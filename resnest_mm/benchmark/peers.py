"""The models ``benchmark backbone`` compares, all returning the
four stage outputs ``(B, 256 * 2**i, H / 2**(i+2), W / 2**(i+2))``.

- ``ours``, ``ours-deploy`` (``switch_to_deploy()``: folded BN, NHWC) and
  ``ours-deploy-compiled`` (``--compile``);
- ``mmdet`` and ``mmseg``: their built-in ``ResNeSt``, loaded with our state
  dict (same keys), so outputs are compared too;
- ``official`` (the ``resnest`` package) cut after ``layer4``, and ``timm``
  (``features_only``), with their own random weights: speed does not depend
  on the values.
"""
import copy
from typing import Tuple

import torch
from torch import Tensor, nn

from resnest_mm.models.arch_presets import get_preset

#: timm/official names that differ from our preset names (ours -> theirs).
OFFICIAL_NAMES = {'resnest50d': 'resnest50', 'resnest101e': 'resnest101',
                  'resnest200e': 'resnest200', 'resnest269e': 'resnest269',
                  'resnest50d_1s4x24d': 'resnest50_fast_1s4x24d',
                  'resnest50d_4s2x40d': 'resnest50_fast_4s2x40d'}
TIMM_NAMES = {v: k for k, v in OFFICIAL_NAMES.items()}
PEERS = ('ours', 'ours-deploy', 'mmdet', 'mmseg', 'official', 'timm')


class OfficialFeatures(nn.Module):
    """The official classifier cut after ``layer4``: returns layer1..4."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        del net.fc

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        n = self.net
        x = n.maxpool(n.relu(n.bn1(n.conv1(x))))
        outs = []
        for layer in (n.layer1, n.layer2, n.layer3, n.layer4):
            x = layer(x)
            outs.append(x)
        return tuple(outs)


def openmmlab_kwargs(arch: str) -> dict:
    """mmdet/mmseg ``ResNeSt`` arguments for a preset; ValueError if they
    cannot express it."""
    preset = get_preset(arch)
    if preset.avd_first or preset.depth not in (50, 101, 152, 200):
        raise ValueError(f'{arch}: mmdet/mmseg have no avd_first and only '
                         'depths 50-200')
    return dict(depth=preset.depth, stem_channels=preset.stem_channels,
                radix=preset.radix, groups=preset.groups,
                base_width=preset.base_width)


def build_peer(name: str, arch: str, ours: nn.Module) -> nn.Module:
    """One model of the comparison, in train mode with BN in train mode."""
    if name == 'ours':
        return ours
    if name == 'ours-deploy':
        return copy.deepcopy(ours).switch_to_deploy()
    if name in ('mmdet', 'mmseg'):
        if name == 'mmdet':
            from mmdet.models.backbones.resnest import ResNeSt as Peer
        else:
            from mmseg.models.backbones.resnest import ResNeSt as Peer
        model = Peer(norm_eval=False, **openmmlab_kwargs(arch))
        model.load_state_dict(ours.state_dict())
        return model
    if name == 'official':
        import resnest.torch
        fn = getattr(resnest.torch, OFFICIAL_NAMES.get(arch, arch), None)
        if fn is None:
            raise ValueError(f'no official model for {arch}')
        return OfficialFeatures(fn(pretrained=False))
    if name == 'timm':
        import timm
        timm_name = TIMM_NAMES.get(arch, arch)
        if timm_name not in timm.list_models('resnest*'):
            raise ValueError(f'no timm model for {arch}')
        return timm.create_model(timm_name, pretrained=False,
                                 features_only=True, out_indices=(1, 2, 3, 4))
    raise ValueError(f'unknown peer {name!r}; choose from {PEERS}')


def compiled_deploy(deploy: nn.Module) -> nn.Module:
    """``torch.compile`` (inductor; CPU: weights frozen into oneDNN layout)."""
    import torch._inductor.config as inductor_config
    inductor_config.freezing = True
    return torch.compile(deploy)


def convert(model: nn.Module, device: torch.device, precision: str,
            channels_last: bool) -> nn.Module:
    model = model.to(device)
    if precision == 'bf16':
        model = model.to(torch.bfloat16)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model
