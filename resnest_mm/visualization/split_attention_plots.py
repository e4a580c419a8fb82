"""Draw what :class:`~resnest_mm.visualization.SplitAttentionProbe` recorded.

Three pictures per image, all PNG, drawn with matplotlib's Agg canvas
(``matplotlib.figure.Figure``: no pyplot state, no display needed):

* :func:`save_selectivity_profile`: per block, network order, the normalised
  entropy of the radix weights (0: one split chosen, 1: splits averaged) and
  each split's mean weight; the same numbers go to a JSON file.
* :func:`save_split_maps`: per stage, the dominant-split map and each
  split's contribution map, overlaid on the image.
* :func:`save_stage_outputs`: each stage's output as mmengine's
  ``Visualizer.draw_featmap`` overlay (channel mean).

:func:`save_split_attention_views` runs a backbone once and writes all three.
"""
import json
import os
from typing import Dict, List, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from mmengine.visualization import Visualizer
from torch import Tensor, nn

from resnest_mm.visualization.split_attention_probe import (
    SplitAttentionProbe, SplitAttentionRecord, block_summary, dominant_split,
    last_block_per_stage, split_attention_layers, split_contributions)

#: What the JSON's numbers mean, written next to them.
SELECTIVITY_DEFINITIONS = dict(
    entropy='per channel: -sum_r w_r log w_r / log R over the R radix '
    'weights (R == 1: binary entropy of the sigmoid gate / log 2); mean over '
    'channels and images. 0: one split chosen, 1: splits averaged',
    split_mean_weights='each split\'s radix weight, mean over channels and '
    'images (R == 1: the mean gate)')
SPLIT_COLOURS = ('#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd',
                 '#8c564b', '#e377c2', '#7f7f7f')


def _check_image(image: np.ndarray) -> None:
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f'image of shape {image.shape} and dtype '
                         f'{image.dtype} must be (H, W, 3) uint8 RGB')


def save_selectivity_profile(summary: List[dict], png_path: str,
                             json_path: str, title: str = '',
                             dpi: int = 100) -> None:
    """Chart and JSON of :func:`~resnest_mm.visualization.block_summary`'s
    per-block numbers. Stages are shaded alternately."""
    with open(json_path, 'w') as f:
        json.dump(dict(definitions=SELECTIVITY_DEFINITIONS, blocks=summary),
                  f, indent=2)
    names = [block['name'] for block in summary]
    x = np.arange(len(names))
    fig = Figure(figsize=(max(4.0, 0.35 * len(names) + 1.5), 4.2))
    top, bottom = fig.subplots(2, 1, sharex=True)
    stages = [block['stage'] for block in summary]
    for i, stage in enumerate(dict.fromkeys(stages)):
        members = [j for j, s in enumerate(stages) if s == stage]
        for ax in (top, bottom):
            if i % 2:
                ax.axvspan(members[0] - 0.5, members[-1] + 0.5,
                           color='0.92', zorder=0)
        top.text(np.mean(members), 1.04, stage, ha='center', fontsize=8)
    top.plot(x, [block['entropy'] for block in summary], 'o-', color='k',
             markersize=3)
    top.set_ylim(-0.05, 1.12)
    top.set_ylabel('normalised\nentropy', fontsize=8)
    offsets = np.zeros(len(names))
    for r in range(max(block['radix'] for block in summary)):
        heights = np.array([
            block['split_mean_weights'][r]
            if r < len(block['split_mean_weights']) else 0.0
            for block in summary
        ])
        bottom.bar(x, heights, bottom=offsets, width=0.8,
                   color=SPLIT_COLOURS[r % len(SPLIT_COLOURS)],
                   label=f'split {r}')
        offsets += heights
    bottom.set_ylabel('mean weight', fontsize=8)
    bottom.set_ylim(0, 1.05)
    bottom.legend(fontsize=7, ncol=4, loc='lower right')
    bottom.set_xticks(x, names, rotation=90, fontsize=7)
    for ax in (top, bottom):
        ax.tick_params(labelsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(png_path, dpi=dpi)


def save_split_maps(image: np.ndarray,
                    records: Sequence[SplitAttentionRecord],
                    png_path: str,
                    index: int = 0,
                    cell_inches: float = 1.2,
                    dpi: int = 100) -> None:
    """One row per record (e.g. the last block of each stage): the
    dominant-split map, then each split's contribution map, all over
    ``image`` (``(H, W, 3)`` uint8 RGB, the network input's frame: maps are
    stretched over it). Contribution maps of one row share one colour scale.
    ``index`` picks the image of the batch."""
    _check_image(image)
    height, width = image.shape[:2]
    extent = (0, width, height, 0)
    columns = 1 + max(record.radix for record in records)
    fig = Figure(figsize=(cell_inches * columns,
                          cell_inches * len(records) * height / width + 0.3))
    axes = np.array(fig.subplots(len(records), columns, squeeze=False))
    for row, record in zip(axes, records):
        contributions = split_contributions(record)[index].cpu()
        dominant = dominant_split(contributions[None])[0].numpy()
        row[0].imshow(image)
        row[0].imshow(
            dominant, extent=extent, alpha=0.55, interpolation='nearest',
            cmap=ListedColormap(SPLIT_COLOURS[:record.radix]),
            vmin=-0.5, vmax=record.radix - 0.5)
        row[0].set_title(f'{record.name} dominant', fontsize=7)
        peak = max(contributions.max().item(), 1e-12)
        for r in range(record.radix):
            row[1 + r].imshow(image)
            row[1 + r].imshow(
                contributions[r].numpy(), extent=extent, alpha=0.6,
                cmap='magma', vmin=0, vmax=peak, interpolation='bilinear')
            row[1 + r].set_title(f'split {r}', fontsize=7,
                                 color=SPLIT_COLOURS[r % len(SPLIT_COLOURS)])
        for ax in row:
            ax.set_axis_off()
    fig.tight_layout(pad=0.3)
    fig.savefig(png_path, dpi=dpi)


def save_stage_outputs(image: np.ndarray, stage_outputs: Dict[str, Tensor],
                       png_path: str, index: int = 0,
                       cell_inches: float = 1.2, dpi: int = 100) -> None:
    """Each stage output ``(B, C, H, W)``, channel mean, drawn over ``image``
    by ``Visualizer.draw_featmap``, side by side."""
    _check_image(image)
    height, width = image.shape[:2]
    fig = Figure(figsize=(cell_inches * len(stage_outputs),
                          cell_inches * height / width + 0.3))
    axes = np.array(fig.subplots(1, len(stage_outputs), squeeze=False))[0]
    for ax, (name, feature) in zip(axes, stage_outputs.items()):
        # resized here: draw_featmap would warn, then resize it the same way
        feature = F.interpolate(feature[index:index + 1].float().cpu(),
                                (height, width), mode='bilinear')[0]
        drawn = Visualizer.draw_featmap(feature, image,
                                        channel_reduction='squeeze_mean')
        ax.imshow(drawn)
        ax.set_title(f'{name} {tuple(stage_outputs[name].shape[2:])}',
                     fontsize=7)
        ax.set_axis_off()
    fig.tight_layout(pad=0.3)
    fig.savefig(png_path, dpi=dpi)


#: Files :func:`save_split_attention_views` writes into its ``out_dir``.
VIEW_FILES = dict(
    profile='selectivity.png', numbers='selectivity.json',
    split_maps='split_maps.png', stage_outputs='stage_outputs.png')


@torch.no_grad()
def save_split_attention_views(backbone: nn.Module, batch: Tensor,
                               picture: np.ndarray, out_dir: str,
                               title: str = '',
                               dpi: int = 100) -> Dict[str, str]:
    """Run ``backbone`` on ``batch`` ``(1, 3, H, W)`` under a probe and write
    :data:`VIEW_FILES` into ``out_dir``: the selectivity profile (PNG and
    JSON) of every block, the split maps of the last block of each stage and
    the stage outputs, over ``picture`` ``(H, W, 3)`` uint8 RGB. Returns the
    paths by :data:`VIEW_FILES` key."""
    os.makedirs(out_dir, exist_ok=True)
    paths = {key: os.path.join(out_dir, name)
             for key, name in VIEW_FILES.items()}
    stage_last = last_block_per_stage(split_attention_layers(backbone))
    with SplitAttentionProbe(backbone, keep_splits=stage_last) as probe:
        backbone(batch)
    save_selectivity_profile(block_summary(probe.records), paths['profile'],
                             paths['numbers'], title=title, dpi=dpi)
    save_split_maps(picture, [probe.records[name] for name in stage_last],
                    paths['split_maps'], dpi=dpi)
    save_stage_outputs(picture, probe.stage_outputs, paths['stage_outputs'],
                       dpi=dpi)
    return paths
