"""Convert a ResNeSt checkpoint of any release layout into ours (mmdet's keys).

    python tools/model_converters/convert_weights.py resnest50-528c19ca.pth \
        resnest50_mm.pth
    python tools/model_converters/convert_weights.py model.safetensors \
        s50d.pth --from timm --arch resnest50d
    python tools/model_converters/convert_weights.py mask_rcnn_s50.pth \
        s50.pth --from mmdet

SRC is read without running pickled code (``weights_only``, or safetensors).
Its layout is detected (official, timm, mmpretrain/mmcls, or an mmdet/mmseg
detector or segmentor, whose ``backbone.*`` part is kept); classifier heads
and non-backbone parts are dropped and listed. The weights must fit the
target backbone: ``--arch`` and/or ``--cfg-options`` (ResNeSt arguments), by
default the variant the weights show. They are loaded into it with
``strict=True`` before DST is written, as ``{'meta', 'state_dict'}``, ready
for ``init_cfg=dict(type='Pretrained', checkpoint=DST)``.

Keys the converter cannot place stop the tool (exit 1) with their list,
unless ``--allow-unplaced``; a variant mismatch always stops it.
"""
import argparse
from typing import List, Optional

from mmengine.config import DictAction

from resnest_mm.models import ARCH_PRESETS
from resnest_mm.weights.convert_file import convert_file

FROM_CHOICES = ('auto', 'official', 'timm', 'mmpretrain', 'mmcls', 'mmdet',
                'mmseg', 'resnest_mm')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help='checkpoint (.pth or .safetensors)')
    parser.add_argument('dst', help='where to write the converted checkpoint')
    parser.add_argument('--from', dest='source_format', default='auto',
                        choices=FROM_CHOICES,
                        help='layout of SRC (default: detect it)')
    parser.add_argument('--arch', choices=sorted(ARCH_PRESETS),
                        help='target variant (default: what SRC shows)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        default={}, help='ResNeSt arguments, key=value')
    parser.add_argument('--allow-unplaced', action='store_true',
                        help='write DST even if some keys have no place')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    lines = convert_file(args.src, args.dst, args.source_format, args.arch,
                         args.cfg_options, args.allow_unplaced)
    print('\n'.join(lines))


if __name__ == '__main__':
    main()
