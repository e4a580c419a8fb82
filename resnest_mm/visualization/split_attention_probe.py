"""Record what every split-attention layer of a backbone computes.

A :class:`SplitAttentionProbe` hooks the submodules of each
:class:`~resnest_mm.models.split_attention.SplitAttentionConv2d` (it changes
no output and no maths) and keeps, per block in network order:

* the radix weights ``(B, R, C)``: softmax over the ``R`` splits, or the
  sigmoid gate when ``R == 1``, taken from ``fc2``'s logits;
* the splits ``(B, R, C, H, W)``: the first output of the layer's ReLU
  (``relu(bn0(conv(x)))``), the tensor the weights multiply;

and the output of every stage. The functions below turn records into the
numbers the viewer draws. Works in eval and deploy mode (``switch_to_deploy``:
``fc2`` is then an ``nn.Linear`` on ``(B, hidden)``).
"""
import math
from dataclasses import dataclass
from typing import Collection, Dict, List, Optional

import torch
from torch import Tensor, nn

from resnest_mm.models.split_attention import (SplitAttentionConv2d,
                                               radix_softmax)


@dataclass
class SplitAttentionRecord:
    """One layer's recording. ``name`` is the block, e.g. ``'layer2.3'``."""
    name: str
    weights: Tensor  # (B, R, C)
    splits: Optional[Tensor]  # (B, R, C, H, W); None when not kept

    @property
    def radix(self) -> int:
        return self.weights.shape[1]

    @property
    def stage(self) -> str:
        """The block's stage: the first part of its name (``'layer2'``)."""
        return self.name.split('.')[0]


def split_attention_layers(
        backbone: nn.Module) -> Dict[str, SplitAttentionConv2d]:
    """Every split-attention layer in network order, keyed by block name
    (the layer's module path without its last part: ``layer2.3.conv2`` ->
    ``layer2.3``)."""
    layers = {
        name.rpartition('.')[0] or name: module
        for name, module in backbone.named_modules()
        if isinstance(module, SplitAttentionConv2d)
    }
    if not layers:
        raise ValueError(
            f'backbone={type(backbone).__name__} has no SplitAttentionConv2d '
            'layer; the split-attention viewer needs a resnest_mm ResNeSt')
    return layers


class SplitAttentionProbe:
    """Context manager that records every split-attention layer's weights and
    splits, and every ``layer{i}`` stage output, during forward passes.

    Args:
        backbone: A module containing ``SplitAttentionConv2d`` layers.
        keep_splits: Block names whose splits are kept (splits are large: a
            ``(B, R, C, H, W)`` map per layer); ``None`` keeps all.

    After the ``with`` block, ``records`` (block name -> record, network
    order) and ``stage_outputs`` (``'layer1'`` -> ``(B, C, H, W)``) hold the
    last forward pass. Tensors are detached, not copied.
    """

    def __init__(self, backbone: nn.Module,
                 keep_splits: Optional[Collection[str]] = None) -> None:
        self.layers = split_attention_layers(backbone)
        unknown = set(keep_splits or ()) - set(self.layers)
        if unknown:
            raise ValueError(f'keep_splits={sorted(unknown)} are not blocks '
                             f'of this backbone; blocks: {list(self.layers)}')
        self.keep_splits = keep_splits
        self.stages = {
            name: module
            for name, module in backbone.named_children()
            if any(block.startswith(name + '.') for block in self.layers)
        }
        self.records: Dict[str, SplitAttentionRecord] = {}
        self.stage_outputs: Dict[str, Tensor] = {}
        self._splits: Dict[str, Optional[Tensor]] = {}
        self._handles: List[torch.utils.hooks.RemovableHandle] = []

    def __enter__(self) -> 'SplitAttentionProbe':
        for name, layer in self.layers.items():
            self._handles += [
                layer.register_forward_pre_hook(self._start(name)),
                layer.relu.register_forward_hook(
                    self._splits_hook(name, layer)),
                layer.fc2.register_forward_hook(
                    self._weights_hook(name, layer)),
            ]
        for name, stage in self.stages.items():
            self._handles.append(
                stage.register_forward_hook(self._stage_hook(name)))
        return self

    def __exit__(self, *exc_info: object) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def _start(self, name: str):
        def hook(module: nn.Module, args: tuple) -> None:
            self._splits.pop(name, None)  # the next ReLU call gives the splits
        return hook

    def _splits_hook(self, name: str, layer: SplitAttentionConv2d):
        # The layer's ReLU runs twice: on the conv output (the splits), then
        # on the attention MLP's hidden layer; only the first call is kept.
        def hook(module: nn.Module, args: tuple, out: Tensor) -> None:
            if name in self._splits:
                return
            if self.keep_splits is None or name in self.keep_splits:
                self._splits[name] = out.detach().view(
                    out.shape[0], layer.radix, -1, *out.shape[2:])
            else:
                self._splits[name] = None
        return hook

    def _weights_hook(self, name: str, layer: SplitAttentionConv2d):
        def hook(module: nn.Module, args: tuple, logits: Tensor) -> None:
            weights = radix_softmax(logits.detach(), layer.radix, layer.groups)
            self.records[name] = SplitAttentionRecord(
                name, weights.flatten(2), self._splits.get(name))
        return hook

    def _stage_hook(self, name: str):
        def hook(module: nn.Module, args: tuple, out: Tensor) -> None:
            self.stage_outputs[name] = out.detach()
        return hook


def normalised_entropy(weights: Tensor) -> Tensor:
    """Per-channel selectivity of radix weights ``(B, R, C)`` -> ``(B, C)``.

    ``R > 1``: the entropy of the weights over the splits divided by
    ``log R``: 0 when one split takes all, 1 when the splits are averaged.
    ``R == 1``: the gate ``g`` is one Bernoulli probability; its binary
    entropy ``H(g) / log 2`` is 0 for a gate fully open or shut and 1 at
    ``g = 0.5`` (a zero logit, as a uniform softmax is for ``R > 1``).
    """
    weights = weights.double()
    if weights.shape[1] == 1:
        weights = torch.cat([weights, 1 - weights], dim=1)
    plogp = torch.special.xlogy(weights, weights)
    return (-plogp.sum(1) / math.log(weights.shape[1])).float()


def split_contributions(record: SplitAttentionRecord) -> Tensor:
    """Each split's attention-weighted response summed over channels,
    ``(B, R, H, W)``. Summed over ``R`` it is the layer's output summed over
    channels."""
    if record.splits is None:
        raise ValueError(f'block {record.name!r} has no splits recorded; '
                         'add it to keep_splits')
    return torch.einsum('brc,brchw->brhw', record.weights.float(),
                        record.splits.float())


def dominant_split(contributions: Tensor) -> Tensor:
    """``(B, R, H, W)`` -> ``(B, H, W)``: at each position, the index of the
    split with the largest contribution."""
    return contributions.argmax(dim=1)


def last_block_per_stage(names: Collection[str]) -> List[str]:
    """The last block name of each stage, in stage order: ``['layer1.0',
    'layer1.1', 'layer2.0']`` -> ``['layer1.1', 'layer2.0']``."""
    last: Dict[str, str] = {}
    for name in names:
        last[name.split('.')[0]] = name
    return list(last.values())


def block_summary(records: Dict[str, SplitAttentionRecord]) -> List[dict]:
    """Per block, network order: ``name``, ``stage``, ``radix``, ``channels``,
    ``entropy`` (:func:`normalised_entropy` averaged over channels and
    images) and ``split_mean_weights`` (each split's weight, averaged over
    channels and images; for ``R == 1`` the mean gate)."""
    return [
        dict(name=name,
             stage=record.stage,
             radix=record.radix,
             channels=record.weights.shape[2],
             entropy=normalised_entropy(record.weights).mean().item(),
             split_mean_weights=record.weights.float().mean((0, 2)).tolist())
        for name, record in records.items()
    ]
