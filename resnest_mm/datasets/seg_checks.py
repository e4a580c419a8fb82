"""A pipeline step that rejects label maps a segmentor cannot learn from.

mmseg reads a label PNG as it is: one whose size differs from its image is
resized or cropped out of step with it (or fails at evaluation with a bare
shape error), and a value that is neither a class nor the ignore index makes
the loss fail with ``Target N is out of bounds`` and is silently dropped by
``IoUMetric``. ``CheckSegMap``, placed right after ``LoadAnnotations``, names
the file and what is wrong instead.
"""
from typing import Dict

import numpy as np
from mmcv.transforms import BaseTransform

#: At most this many bad label values are listed in an error.
MAX_LISTED = 5


class CheckSegMap(BaseTransform):
    """Check ``gt_seg_map`` against its image and the number of classes.

    Registered as ``type='CheckSegMap'`` in mmseg's ``TRANSFORMS``.

    Args:
        num_classes: Classes the decode head predicts; labels must lie in
            ``0 .. num_classes - 1`` or equal ``ignore_index`` after
            ``LoadAnnotations`` (``reduce_zero_label``, class ``label_map``).
        ignore_index: Label of ignored pixels (mmseg's 255).

    Raises:
        ValueError: the label map is not the size of its image (``ori_shape``,
            so the step may follow a ``Resize``), or holds other values.
    """

    def __init__(self, num_classes: int, ignore_index: int = 255) -> None:
        if not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f'num_classes={num_classes!r} must be a '
                             'positive int (the decode head\'s num_classes)')
        self.num_classes = num_classes
        self.ignore_index = ignore_index

    def transform(self, results: Dict) -> Dict:
        if 'gt_seg_map' not in results:
            raise KeyError('CheckSegMap needs gt_seg_map: put it after '
                           'LoadAnnotations in the pipeline')
        seg_map = results['gt_seg_map']
        seg_path = results.get('seg_map_path', '<seg map>')
        img_shape = tuple(results['ori_shape'][:2])
        if seg_map.shape[:2] != img_shape:
            raise ValueError(
                f'{seg_path} is {seg_map.shape[0]}x{seg_map.shape[1]} (HxW) '
                f'but its image {results.get("img_path", "")} is '
                f'{img_shape[0]}x{img_shape[1]}; a label map must have its '
                'image\'s size')
        values = np.unique(seg_map)
        bad = values[(values >= self.num_classes)
                     & (values != self.ignore_index)]
        if bad.size:
            raise ValueError(self._range_message(results, seg_path, bad))
        return results

    def _range_message(self, results: Dict, seg_path: str,
                       bad: np.ndarray) -> str:
        """Name the bad values as stored in the file and as loaded."""
        listed = [int(v) for v in bad[:MAX_LISTED]]
        more = f' and {bad.size - MAX_LISTED} more' if bad.size > MAX_LISTED \
            else ''
        allowed = (f'0..{self.num_classes - 1} (num_classes='
                   f'{self.num_classes}) or {self.ignore_index} (ignore)')
        if not results.get('reduce_zero_label'):
            return (f'{seg_path}: label values {listed}{more} are outside '
                    f'{allowed}')
        # reduce_zero_label maps file value v to v - 1 (and 0 to ignore);
        # a class label_map leaves values it does not know unchanged.
        in_file = [v + 1 for v in listed]
        return (f'{seg_path}: label values {in_file}{more} in the file '
                f'(loaded as {listed} by reduce_zero_label: 0 = other -> '
                f'{self.ignore_index}, v -> v - 1) are outside {allowed}')

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(num_classes={self.num_classes}, '
                f'ignore_index={self.ignore_index})')
