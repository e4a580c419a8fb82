"""What each ResNeSt variant costs: params, FLOPs, activations, eval speed.

    python tools/analysis_tools/cost_table.py --input-size 224 --repeats 3 \\
        --threads 1 --deploy --chart resources/cost_chart.png --update-docs
    python tools/analysis_tools/cost_table.py --skip-speed  # counts only

Every distinct preset of ``ResNeSt`` (aliases share a row) and mmdet's
ResNet-50/101, counted by mmengine's FlopAnalyzer/ActivationAnalyzer and
timed in one interleaved eval run (:mod:`resnest_mm.analysis.costs`). Writes
``<out-dir>/cost_table.md`` and ``.json``; ``--chart`` draws images/s
against FLOPs; ``--update-docs`` rewrites the table between
``<!-- cost-table:start -->`` and ``<!-- cost-table:end -->`` in
docs/en/benchmarks.md, under the command and the CPU that made it.
"""
import argparse
import sys
from typing import List, Optional, Sequence

import torch

from resnest_mm.analysis.costs import (DOC_TABLE, chart, cost_table,
                                       model_names, write_outputs)
from resnest_mm.analysis.doc_tables import (BENCHMARKS_DOC, check_doc_table,
                                            update_doc_table)

TOOL = 'tools/analysis_tools/cost_table.py'


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--input-size', type=int, default=224,
                        help='square input side in pixels')
    parser.add_argument('--batch-size', type=int, default=1,
                        help='images per timed forward')
    parser.add_argument('--repeats', type=int, default=3,
                        help='interleaved timed forwards per model')
    parser.add_argument('--threads', type=int, default=None,
                        help="CPU threads (default: torch's default)")
    parser.add_argument('--models', nargs='+', default=model_names(),
                        choices=model_names(), metavar='MODEL',
                        help='rows of the table (default: all)')
    parser.add_argument('--skip-speed', action='store_true',
                        help='counts only, no timing')
    parser.add_argument('--deploy', action='store_true',
                        help='also time each ResNeSt after switch_to_deploy')
    parser.add_argument('--out-dir', default='work_dirs/cost_table')
    parser.add_argument('--chart', default=None, metavar='PATH',
                        help='write the speed-vs-FLOPs chart (PNG) here')
    parser.add_argument('--update-docs', nargs='?', const=BENCHMARKS_DOC,
                        default=None, metavar='PATH',
                        help='replace the table between the cost-table '
                        f'markers of this page (default {BENCHMARKS_DOC})')
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> None:
    args = parse_args(argv)
    if args.update_docs:  # check the markers before the long run
        try:
            check_doc_table(args.update_docs, DOC_TABLE)
        except ValueError as err:
            sys.exit(f'--update-docs {err}')
    if args.threads:
        torch.set_num_threads(args.threads)
    result = cost_table(args.models, args.input_size, args.batch_size,
                        args.repeats, speed=not args.skip_speed,
                        deploy=args.deploy)
    lines: List[str] = write_outputs(result, args.out_dir)
    print('\n'.join(lines))
    if args.chart:
        chart(result, args.chart)
    if args.update_docs:
        update_doc_table(args.update_docs, DOC_TABLE, lines, TOOL, argv)


if __name__ == '__main__':
    main()
