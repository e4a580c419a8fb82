"""See what the split attention of a ResNeSt backbone does on images.

Per image, into ``<out-dir>/<image name>/`` (two images of one name are
refused, not overwritten): ``selectivity.png`` and
``selectivity.json`` (per block: normalised entropy of the radix weights, 0 =
one split chosen, 1 = splits averaged, and each split's mean weight),
``split_maps.png`` (last block of each stage: dominant split and each
split's contribution over the image) and ``stage_outputs.png`` (mmengine
``draw_featmap`` overlays).

    python tools/analysis_tools/vis_split_attention.py \\
        --config configs/toy/faster_rcnn_resnest14_fpn_toy.py \\
        --checkpoint work_dirs/faster_rcnn_resnest14_fpn_toy/epoch_12.pth \\
        data/toy_coco/val2017/000000000001.jpg --out-dir work_dirs/vis
    python tools/analysis_tools/vis_split_attention.py --arch resnest50d \\
        photo.jpg --out-dir work_dirs/vis --deploy
"""
import argparse
import os
import sys
from typing import List, Optional

import matplotlib
from mmengine.config import DictAction

from resnest_mm.visualization import save_split_attention_views
from resnest_mm.visualization.model_inputs import (arch_image_batch,
                                                   build_arch_backbone,
                                                   build_config_model,
                                                   check_file,
                                                   config_image_batch,
                                                   image_out_dirs)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument('--config', help='mmdet, mmseg or MMPretrain '
                        'config file')
    source.add_argument('--arch', help='bare backbone preset, e.g. resnest50d')
    parser.add_argument('images', nargs='+', help='image files')
    parser.add_argument('--checkpoint', help='weights to load')
    parser.add_argument('--out-dir', default='work_dirs/split_attention')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config entries, key=value')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--deploy', action='store_true',
                        help='switch_to_deploy() the backbone first')
    parser.add_argument('--size', type=int, default=224,
                        help='--arch only: longer image side in pixels')
    parser.add_argument('--dpi', type=int, default=100)
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    matplotlib.use('Agg')  # files only, no display
    try:
        for image in args.images:
            check_file(image, 'image')
        out_dirs = image_out_dirs(args.images, args.out_dir)
        if args.config:
            model, cfg = build_config_model(args.config, args.checkpoint,
                                            args.cfg_options, args.device)
            backbone = model.backbone
        else:
            backbone = build_arch_backbone(args.arch, args.checkpoint,
                                           args.device)
    except (FileNotFoundError, ValueError) as err:
        sys.exit(f'error: {err}')
    if args.deploy:
        backbone.switch_to_deploy()
    for image, out_dir in zip(args.images, out_dirs):
        if args.config:
            batch, picture = config_image_batch(model, cfg, image)
        else:
            batch, picture = arch_image_batch(image, args.size)
        title = (f'{args.arch or os.path.basename(args.config)}'
                 f'{" (deploy)" if args.deploy else ""}: '
                 f'{os.path.basename(out_dir)}')
        paths = save_split_attention_views(
            backbone, batch.to(args.device), picture, out_dir, title=title,
            dpi=args.dpi)
        for path in paths.values():
            print(path)


if __name__ == '__main__':
    main()
