"""A toy ADE20K-format segmentation dataset: textured regions on gradients.

``make_toy_ade20k(root)`` writes ADE20K's on-disk layout::

    root/images/training/000001.jpg ...        (H, W, 3) BGR JPEG
    root/images/validation/...
    root/annotations/training/000001.png ...   (H, W) uint8 label PNG
    root/annotations/validation/...

Label values are ADE20K's own: 0 is "other" and ``k`` is the ``k``-th class
of ``ADE20KDataset.METAINFO`` (1 = wall, 10 = grass, ...), so the unchanged
``ADE20KDataset`` reads the files with ``reduce_zero_label=True`` (0 becomes
255 = ignored, ``k`` becomes ``k - 1``). A config that sets
``metainfo=dict(classes=TOY_ADE20K_CLASSES)`` gets mmseg's class-subset
``label_map`` and trains ``len(TOY_ADE20K_CLASSES)`` classes.

Each image is a noisy colour gradient ("other") with 2-4 shapes painted on
top; a shape's class is its texture: a plain wall, vertical grass blades,
horizontal water waves or a diagonal fence lattice, in random colours, period
and phase. Shape kind, size and colour carry no class information, so a model
must read texture. The same ``seed`` gives the same bytes on every machine.
"""
from pathlib import Path
from typing import Dict, Tuple, Union

import cv2
import numpy as np

from resnest_mm.toy_data.shapes import (SHAPE_KINDS, background,
                                        distinct_colour, shape_mask)

#: Class name -> label value in the PNG (its 1-based ADE20K class index).
TOY_ADE20K_LABELS: Dict[str, int] = {
    'wall': 1,
    'grass': 10,
    'water': 22,
    'fence': 33,
}
#: The toy classes, in the order mmseg numbers them after reduce_zero_label.
TOY_ADE20K_CLASSES: Tuple[str, ...] = tuple(TOY_ADE20K_LABELS)

#: Split name -> number of images.
DEFAULT_SPLITS = {'training': 96, 'validation': 24}

#: Texture periods in pixels, drawn per region.
PERIOD_RANGE = (6, 11)


def texture(kind: str, height: int, width: int, period: int,
            phase: Tuple[int, int]) -> np.ndarray:
    """Boolean ``(H, W)`` two-tone pattern of class ``kind``.

    ``period`` is the pattern's repeat in pixels, ``phase`` its ``(y, x)``
    offset. Stripes are half ``True``; a plain wall is all ``True``.
    """
    ys, xs = np.mgrid[0:height, 0:width]
    ys, xs = ys + phase[0], xs + phase[1]
    half = period // 2
    if kind == 'wall':  # plain: one colour
        return np.ones((height, width), bool)
    if kind == 'grass':  # vertical stripes
        return (xs % period) < half
    if kind == 'water':  # horizontal stripes
        return (ys % period) < half
    if kind == 'fence':  # diagonal lattice
        return ((xs + ys) % period < 2) | ((xs - ys) % period < 2)
    raise ValueError(f'kind={kind!r} has no texture; choose one of '
                     f'{TOY_ADE20K_CLASSES}')


def _paint_texture(rng: np.random.Generator, img: np.ndarray,
                   mask: np.ndarray, kind: str) -> None:
    """Paint ``mask`` pixels of ``img`` in place with a random ``kind``
    texture: two contrasting colours, light noise."""
    height, width = mask.shape
    period = int(rng.integers(*PERIOD_RANGE))
    phase = tuple(int(p) for p in rng.integers(0, period, size=2))
    pattern = texture(kind, height, width, period, phase)[mask]
    first = distinct_colour(rng, img, mask)
    second = distinct_colour(rng, first[None, None], np.ones((1, 1), bool))
    colours = np.where(pattern[:, None], first, second)
    noise = rng.normal(0, 6, size=colours.shape)
    img[mask] = np.clip(colours + noise, 0, 255).astype(np.uint8)


def _draw_sample(rng: np.random.Generator, size: int,
                 max_regions: int) -> Tuple[np.ndarray, np.ndarray]:
    """One ``(size, size, 3)`` BGR image and its ``(size, size)`` labels."""
    img = background(rng, size, size)
    labels = np.zeros((size, size), np.uint8)  # 0 = "other"
    for _ in range(int(rng.integers(2, max_regions + 1))):
        side = float(rng.uniform(0.3, 0.75) * size)
        center = tuple(rng.uniform(side / 3, size - side / 3, size=2))
        mask = shape_mask(SHAPE_KINDS[int(rng.integers(len(SHAPE_KINDS)))],
                          center, side, float(rng.uniform(0, 360)), size,
                          size)
        kind = TOY_ADE20K_CLASSES[int(rng.integers(len(TOY_ADE20K_CLASSES)))]
        _paint_texture(rng, img, mask, kind)
        labels[mask] = TOY_ADE20K_LABELS[kind]
    return img, labels


def make_toy_ade20k(root: Union[str, Path],
                    splits: Dict[str, int] = DEFAULT_SPLITS,
                    image_size: int = 128, max_regions: int = 4,
                    seed: int = 0) -> Dict[str, int]:
    """Write the dataset under ``root``; return split -> number of images.

    Args:
        root: dataset directory (``data_root`` in the toy configs).
        splits: split folder name (``training``, ``validation``) -> number
            of images.
        image_size: side of the square images in pixels.
        max_regions: at most this many textured shapes per image (at least 2).
        seed: base seed; each split draws from its own stream.
    """
    if image_size < 64:
        raise ValueError(f'image_size={image_size} is too small for '
                         'textured regions; use at least 64')
    if max_regions < 2:
        raise ValueError(f'max_regions={max_regions} must be at least 2')
    root = Path(root)
    for split_index, (split, num_images) in enumerate(splits.items()):
        rng = np.random.default_rng([seed, split_index])
        img_dir = root / 'images' / split
        ann_dir = root / 'annotations' / split
        img_dir.mkdir(parents=True, exist_ok=True)
        ann_dir.mkdir(parents=True, exist_ok=True)
        for index in range(1, num_images + 1):
            img, labels = _draw_sample(rng, image_size, max_regions)
            cv2.imwrite(str(img_dir / f'{index:06d}.jpg'), img,
                        [cv2.IMWRITE_JPEG_QUALITY, 95])
            cv2.imwrite(str(ann_dir / f'{index:06d}.png'), labels)
    return dict(splits)
