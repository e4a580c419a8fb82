"""Write the built-in toy datasets that the configs under configs/toy/ read.

    python tools/misc/make_toy_data.py coco            # -> data/toy_coco/
    python tools/misc/make_toy_data.py coco --out-dir /tmp/toy --seed 1
    python tools/misc/make_toy_data.py ade20k          # -> data/toy_ade20k/
    python tools/misc/make_toy_data.py cls             # -> data/toy_cls/

The same seed writes the same files; existing files are overwritten.
"""
import argparse
from typing import List, Optional

from resnest_mm.toy_data import (make_toy_ade20k, make_toy_classification,
                                 make_toy_coco)

#: Dataset kind -> (writer, default output folder).
DATASETS = {
    'coco': (make_toy_coco, 'data/toy_coco'),
    'ade20k': (make_toy_ade20k, 'data/toy_ade20k'),
    'cls': (make_toy_classification, 'data/toy_cls'),
}


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('kind', choices=sorted(DATASETS),
                        help='which dataset layout to write')
    parser.add_argument('--out-dir', help='output folder (default: '
                        'data/toy_<kind>, where the toy configs look)')
    parser.add_argument('--seed', type=int, default=0)
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> str:
    args = parse_args(argv)
    writer, default_dir = DATASETS[args.kind]
    out_dir = args.out_dir or default_dir
    writer(out_dir, seed=args.seed)
    print(f'wrote the toy {args.kind} dataset to {out_dir}')
    return out_dir


if __name__ == '__main__':
    main()
