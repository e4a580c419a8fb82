"""A toy image classification dataset: one circle, square or triangle per image.

``make_toy_classification(root)`` writes MMPretrain's ``CustomDataset``
folder layout (one sub-folder per class, the folder name is the label)::

    root/train/circle/circle_000001.jpg ...     (H, W, 3) BGR JPEG
    root/train/square/...
    root/train/triangle/...
    root/val/circle/...

so ``CustomDataset(data_root=root, data_prefix='train')`` reads it unchanged
and numbers the classes in :data:`TOY_CLS_CLASSES` order (sorted folder
names). File names start with the class, as ImageNet's do, so no two images
share a name. The pictures come from the same drawing code as the toy COCO
set (:mod:`resnest_mm.toy_data.shapes`): a noisy colour gradient with one
shape of random size, position, rotation and colour, so a backbone
pretrained on it has seen the toy detector's objects. Classes are balanced;
the same ``seed`` gives the same bytes on every machine.
"""
from pathlib import Path
from typing import Dict, Tuple, Union

import cv2
import numpy as np

from resnest_mm.toy_data.shapes import (SHAPE_KINDS, background,
                                        distinct_colour, paint, shape_mask)

#: The classes, in the order ``CustomDataset`` numbers the folders.
TOY_CLS_CLASSES: Tuple[str, ...] = tuple(sorted(SHAPE_KINDS))

#: Split folder -> images per class.
DEFAULT_SPLITS = {'train': 1000, 'val': 50}

#: Shape side (or diameter) as a fraction of the image side: large enough
#: for a small network to tell the shapes apart in minutes, below
#: ``1/sqrt(2)``, where a rotated square still fits.
SIDE_RANGE = (0.45, 0.65)


def _draw_image(rng: np.random.Generator, kind: str,
                size: int) -> np.ndarray:
    """One ``(size, size, 3)`` BGR image holding one ``kind`` shape, wholly
    inside the image."""
    img = background(rng, size, size)
    side = float(rng.uniform(*SIDE_RANGE) * size)
    # a rotated square reaches side / sqrt(2) from its centre; one pixel
    # more for rounding
    margin = side / 2 ** 0.5 + 1
    center = tuple(rng.uniform(margin, size - margin, size=2))
    mask = shape_mask(kind, center, side, float(rng.uniform(0, 360)), size,
                      size)
    paint(rng, img, mask, distinct_colour(rng, img, mask))
    return img


def make_toy_classification(root: Union[str, Path],
                            splits: Dict[str, int] = DEFAULT_SPLITS,
                            image_size: int = 32,
                            seed: int = 0) -> Dict[str, int]:
    """Write the dataset under ``root``; return split -> number of images.

    Args:
        root: dataset directory (``data_root`` in the toy config).
        splits: split folder name (``train``, ``val``) -> images per class.
        image_size: side of the square images in pixels.
        seed: base seed; each split draws from its own stream.
    """
    if image_size < 32:
        raise ValueError(f'image_size={image_size} is too small for a '
                         'recognisable shape; use at least 32')
    root = Path(root)
    written = {}
    for split_index, (split, per_class) in enumerate(splits.items()):
        if per_class < 1:
            raise ValueError(f'splits[{split!r}]={per_class}: each split '
                             'needs at least one image per class')
        rng = np.random.default_rng([seed, split_index])
        for kind in TOY_CLS_CLASSES:
            (root / split / kind).mkdir(parents=True, exist_ok=True)
        # classes interleaved, so every prefix of the stream is balanced
        for index in range(1, per_class + 1):
            for kind in TOY_CLS_CLASSES:
                img = _draw_image(rng, kind, image_size)
                path = root / split / kind / f'{kind}_{index:06d}.jpg'
                cv2.imwrite(str(path), img, [cv2.IMWRITE_JPEG_QUALITY, 95])
        written[split] = per_class * len(TOY_CLS_CLASSES)
    return written
