"""``benchmark gpu-suite``: every GPU target of the project in one run.

On a CUDA machine it measures, in about 5 minutes on a recent card:

- the backbone (ResNeSt-50d, batch 32, 224^2) in eval and train, fp32, AMP
  (fp16 autocast) and bf16, NCHW and channels_last, eager and deploy +
  ``torch.compile``, against mmdet's model in the same run and as a share of
  the card's dense 3x3 conv rate (target: bf16 eval >= 40%);
- a Faster R-CNN S-50 training iteration, our config with our best settings
  (AMP, ours in channels_last) against mmdet's stock S-50 config with AMP
  (target >= 1.3x);
- ``with_cp`` peak train memory on CUDA (target >= 40% lower).

``quick=True`` runs the same three parts at toy sizes, without compiling, so
CI exercises every code path on a CPU; its numbers mean nothing.
"""
import argparse
from typing import List, Tuple

from resnest_mm.benchmark.backbone import backbone_markdown, bench_backbones
from resnest_mm.benchmark.cp_memory import bench_cp_memory, cp_memory_markdown
from resnest_mm.benchmark.e2e import OURS_CONFIG, bench_e2e, e2e_markdown

#: Settings of each part: (full run on a GPU, ``quick`` run on a CPU).
BACKBONE = (dict(arch='resnest50d', batch_size=32, input_size=224, warmup=3,
                 repeats=10, compile=True),
            # (mmdet's class cannot express resnest14d: the smallest is 50d)
            dict(arch='resnest50d', batch_size=2, input_size=32, warmup=0,
                 repeats=1, compile=False))
E2E = (dict(batch_size=2, image_size=800, boxes=5, warmup=3, repeats=10,
            cfg_options={}),
       dict(batch_size=2, image_size=64, boxes=2, warmup=0, repeats=1,
            cfg_options={'model.train_cfg.rcnn.sampler.num': 16}))
CP_MEMORY = (dict(arch='resnest50d', batch_size=8, input_size=512),
             dict(arch='resnest14d', batch_size=2, input_size=64))
#: Faster R-CNN S-50, ours (best settings) / mmdet's stock config, both AMP.
E2E_TARGET = 1.3


def suite_args(device: str, quick: bool) -> Tuple[argparse.Namespace, ...]:
    """The arguments of the backbone, e2e and cp-memory parts."""
    pick = int(quick)
    backbone = argparse.Namespace(
        device=device, peers=['ours', 'ours-deploy', 'mmdet'],
        precisions=['fp32', 'amp', 'bf16'], channels_last=['off', 'on'],
        modes=['eval', 'train'], **BACKBONE[pick])
    # (AMP needs CUDA: mmcv's CPU nms refuses the boxes CPU autocast makes.)
    precision = 'amp' if device.startswith('cuda') else 'fp32'
    e2e = argparse.Namespace(
        device=device, precision=precision, channels_last=False,
        ours_channels_last=True, ours_config=OURS_CONFIG, **E2E[pick])
    cp_memory = argparse.Namespace(device=device, warmup=0, repeats=1,
                                   **CP_MEMORY[pick])
    return backbone, e2e, cp_memory


def run_gpu_suite(device: str = 'cuda',
                  quick: bool = False) -> Tuple[dict, List[str]]:
    """Run the three parts; the result (with every target) and Markdown."""
    backbone_args, e2e_args, cp_args = suite_args(device, quick)
    result = dict(device=device, quick=quick,
                  backbone=bench_backbones(backbone_args),
                  e2e=bench_e2e(e2e_args, speedup_target=E2E_TARGET),
                  cp_memory=bench_cp_memory(cp_args))
    result['targets'] = [t for part in ('backbone', 'e2e', 'cp_memory')
                         for t in result[part]['targets']]
    markdown = (['## Backbone', ''] + backbone_markdown(result['backbone'])
                + ['', '## Faster R-CNN S-50 training', '']
                + e2e_markdown(result['e2e'])
                + ['', '## with_cp', ''] + cp_memory_markdown(
                    result['cp_memory']))
    if quick:
        markdown.insert(0, 'Quick mode: toy sizes, nothing compiled; the '
                        'numbers only show that every path runs.')
    return result, markdown
