"""Our ResNeSt against mmdet's, mmseg's, the official and timm's, side by side.

    python tools/analysis_tools/benchmark.py backbone  # ResNeSt-50d, 2 x 128^2
    python tools/analysis_tools/benchmark.py backbone --device cuda \\
        --batch-size 32 --input-size 224 --precisions fp32 amp bf16 \\
        --channels-last off on
    python tools/analysis_tools/benchmark.py cp-memory --batch-size 8 \\
        --input-size 512
    python tools/analysis_tools/benchmark.py e2e --repeats 3  # slow
    python tools/analysis_tools/benchmark.py gpu-suite  # every GPU target
    python tools/analysis_tools/benchmark.py low-precision --compile \
        --input-size 224 --repeats 15  # bf16, int8, onnxruntime on the CPU
    python tools/analysis_tools/benchmark.py deployed \
        configs/faster_rcnn_resnest50_fpn.py [CKPT] --profile  # per image

``backbone`` (:mod:`resnest_mm.benchmark.backbone`): eval and train speed and
peak memory of every model in one process, interleaved, with ratios to
mmdet's. ``cp-memory`` (:mod:`resnest_mm.benchmark.cp_memory`): ours with and
without ``with_cp``. ``e2e`` (:mod:`resnest_mm.benchmark.e2e`): a Faster R-CNN
S-50 training iteration, our config against mmdet's; on a CPU one iteration
takes about a minute. ``gpu-suite`` (:mod:`resnest_mm.benchmark.gpu_suite`):
all GPU targets in one table; ``--quick`` runs it at toy sizes on a CPU.
``low-precision`` (:mod:`resnest_mm.benchmark.low_precision`): the deploy
backbone in fp32, bf16 and int8 (onnxruntime) on the CPU against mmdet's fp32
eager model, with the features' cosine similarity to fp32 on photographs.
``deployed`` (:mod:`resnest_mm.benchmark.deployed`): per-image latency of
the whole predict path (post-processing included) at the config's test
size, batch 1: mmdet's or mmseg's stock fp32 eager model, ours eager, and
each file ``tools/deployment/export_model.py --precision`` writes; several
``CONFIG [CKPT]`` entries make one table; ``--quick`` runs toy sizes.
Each command writes ``<out-dir>/<command>.json`` and
``.md`` and prints the tables; ``--update-docs`` also writes them between the
``<!-- benchmark-<command>:start -->`` and ``:end -->`` markers of
docs/en/benchmarks.md, under the command and the CPU that made them.

On a shared CPU machine ``--threads 1`` gives steadier numbers: with two
OpenMP threads on oversubscribed cores every op waits for a descheduled thread.
"""
import argparse
from typing import List, Optional, Sequence, Tuple

import torch
from mmengine.config import DictAction

from resnest_mm.analysis.doc_tables import (BENCHMARKS_DOC, check_doc_table,
                                            update_doc_table)
from resnest_mm.benchmark.backbone import backbone_markdown, bench_backbones
from resnest_mm.benchmark.cp_memory import bench_cp_memory, cp_memory_markdown
from resnest_mm.benchmark.deployed import (bench_deployed,
                                           deployed_markdown, quick_defaults)
from resnest_mm.benchmark.gpu_suite import run_gpu_suite
from resnest_mm.benchmark.low_precision import (bench_low_precision,
                                                low_precision_markdown)
from resnest_mm.benchmark.peers import PEERS
from resnest_mm.benchmark.timing import targets_table, write_report
from resnest_mm.deployment.low_precision import PRECISIONS

TOOL = 'tools/analysis_tools/benchmark.py'


def add_update_docs(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--update-docs', nargs='?', const=BENCHMARKS_DOC,
                        default=None, metavar='PATH',
                        help="replace the tables between this command's "
                        f'markers of this page (default {BENCHMARKS_DOC})')


def doc_table(command: str) -> str:
    """The name of ``command``'s table markers in the docs."""
    return f'benchmark-{command}'


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument('--device', default='cpu', help='cpu or cuda[:i]')
    common.add_argument('--threads', type=int, default=None,
                        help='CPU threads (default: torch\'s default)')
    common.add_argument('--warmup', type=int, default=1)
    common.add_argument('--repeats', type=int, default=5)
    common.add_argument('--out-dir', default='work_dirs/benchmark')
    common.add_argument('--arch', default='resnest50d')
    common.add_argument('--batch-size', type=int, default=2)
    add_update_docs(common)
    sub = parser.add_subparsers(dest='command', required=True)

    bb = sub.add_parser('backbone', parents=[common],
                        help='backbones side by side')
    bb.add_argument('--input-size', type=int, default=128)
    bb.add_argument('--peers', nargs='+', default=list(PEERS),
                    choices=PEERS)
    bb.add_argument('--precisions', nargs='+', default=['fp32'],
                    choices=['fp32', 'amp', 'bf16'],
                    help='amp: autocast to fp16 on CUDA, bf16 on CPU')
    bb.add_argument('--channels-last', nargs='+', default=['off'],
                    choices=['off', 'on'])
    bb.add_argument('--modes', nargs='+', default=['eval', 'train', 'memory'],
                    choices=['eval', 'train', 'memory'])
    bb.add_argument('--compile', action='store_true',
                    help='add torch.compile of the deploy model (slow to '
                    'build on CPU: about 1.5 min for ResNeSt-50)')

    cp = sub.add_parser('cp-memory', parents=[common],
                        help='peak train memory with and without with_cp')
    cp.add_argument('--input-size', type=int, default=256)

    e2e = sub.add_parser('e2e', parents=[common],
                         help='Faster R-CNN S-50: our config vs mmdet\'s')
    e2e.add_argument('--image-size', type=int, default=320)
    e2e.add_argument('--boxes', type=int, default=5,
                     help='ground-truth boxes per image')
    e2e.add_argument('--precision', default='fp32', choices=['fp32', 'amp'])
    e2e.add_argument('--channels-last', action='store_true',
                     help='both models in NHWC')
    e2e.add_argument('--ours-channels-last', action='store_true',
                     help='only ours in NHWC')
    e2e.add_argument('--ours-config', default='configs/'
                     'faster_rcnn_resnest50_fpn.py')
    e2e.add_argument('--cfg-options', nargs='+', action=DictAction,
                     default={}, help='overrides for both configs, e.g. '
                     'model.train_cfg.rcnn.sampler.num=64')

    low = sub.add_parser('low-precision', parents=[common],
                         help='deploy backbone in bf16 and int8 on the CPU')
    low.add_argument('--input-size', type=int, default=224)
    low.add_argument('--compile', action='store_true',
                     help='add torch.compile of the fp32 and bf16 deploy '
                     'models (about a minute each for ResNeSt-50 on 2 '
                     'cores)')

    dep = sub.add_parser('deployed', parents=[common],
                         help='whole model per image: stock, ours, shipped '
                         'files')
    dep.add_argument('entries', nargs='+', metavar='CONFIG [CKPT]',
                     help='Faster R-CNN or EncoderDecoder configs, each '
                     'optionally followed by its checkpoint (default: '
                     'random weights)')
    dep.add_argument('--precisions', nargs='+', default=list(PRECISIONS),
                     choices=PRECISIONS, help='the shipped files to time')
    dep.add_argument('--image-size', type=int, nargs=2, metavar=('H', 'W'),
                     help="default: the config's test size")
    dep.add_argument('--calib-images', type=int, default=8,
                     help='int8 calibration images')
    dep.add_argument('--profile', action='store_true',
                     help='also time each part (backbone, neck, RPN, RoI '
                     'head, post-processing)')
    dep.add_argument('--quick', action='store_true',
                     help='2 repeats, 2 calibration images, the stock '
                     'detector on 100 proposals: with a toy config, checks '
                     'that every path runs (CI)')

    suite = sub.add_parser('gpu-suite', help='every GPU target in one run '
                           '(under 8 minutes on a CUDA card)')
    suite.add_argument('--device', default='cuda')
    suite.add_argument('--quick', action='store_true',
                       help='toy sizes, no compile: checks that every path '
                       'runs (CI does this on a CPU)')
    suite.add_argument('--threads', type=int, default=None)
    suite.add_argument('--out-dir', default='work_dirs/benchmark')
    add_update_docs(suite)
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> dict:
    args = parse_args(argv)
    if args.update_docs:  # check the markers before the long run
        try:
            check_doc_table(args.update_docs, doc_table(args.command))
        except ValueError as err:
            raise SystemExit(f'--update-docs {err}') from err
    threads = torch.get_num_threads()
    torch.set_num_threads(args.threads or threads)
    try:
        result, markdown = run_command(args)
    finally:
        torch.set_num_threads(threads)
    markdown += [''] + targets_table(result['targets'])
    write_report(result, markdown, args.out_dir, args.command)
    print('\n'.join(markdown))
    print(f'written: {args.out_dir}/{args.command}.json and .md')
    if args.update_docs:
        update_doc_table(args.update_docs, doc_table(args.command), markdown,
                         TOOL, argv)
        print(f'written: the {doc_table(args.command)} table of '
              f'{args.update_docs}')
    return result


def run_command(args: argparse.Namespace) -> Tuple[dict, List[str]]:
    """The result dict and its markdown lines for ``args.command``."""
    if args.command == 'backbone':
        result = bench_backbones(args)
        return result, backbone_markdown(result)
    if args.command == 'cp-memory':
        result = bench_cp_memory(args)
        return result, cp_memory_markdown(result)
    if args.command == 'gpu-suite':
        return run_gpu_suite(args.device, args.quick)
    if args.command == 'low-precision':
        if args.device != 'cpu':
            raise ValueError(f'--device {args.device}: low-precision '
                             'measures CPU inference; use --device cpu')
        result = bench_low_precision(args)
        return result, low_precision_markdown(result)
    if args.command == 'deployed':
        if args.device != 'cpu':
            raise ValueError(f'--device {args.device}: deployed measures '
                             'CPU inference; use --device cpu')
        quick_defaults(args)
        result = bench_deployed(args)
        return result, deployed_markdown(result)
    from resnest_mm.benchmark.e2e import bench_e2e, e2e_markdown
    result = bench_e2e(args)
    return result, e2e_markdown(result)


if __name__ == '__main__':
    main()
