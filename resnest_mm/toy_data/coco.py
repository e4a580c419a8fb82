"""A toy COCO-format detection dataset: circles, squares and triangles.

``make_toy_coco(root)`` writes::

    root/train2017/000000000001.jpg ...
    root/val2017/...
    root/annotations/instances_train2017.json
    root/annotations/instances_val2017.json

Objects vary in size (12-60 px on 128-px images), position, rotation and
colour and may overlap; a later object may hide up to half of an earlier one.
The box and area are those of the visible part, and ``segmentation`` is the
visible part's outer polygon, as in COCO. The same ``seed`` gives the same
bytes on every machine (numpy's PCG64 + OpenCV's JPEG encoder).
"""
import json
import os.path as osp
from pathlib import Path
from typing import Dict, List, Tuple, Union

import cv2
import numpy as np

from resnest_mm.toy_data.shapes import (SHAPE_KINDS, background,
                                        distinct_colour, paint, shape_mask)

TOY_COCO_CLASSES: Tuple[str, ...] = SHAPE_KINDS

#: Split name -> (number of images, seed offset).
DEFAULT_SPLITS = {'train2017': 160, 'val2017': 40}


def _draw_image(rng: np.random.Generator, size: int,
                max_objects: int) -> Tuple[np.ndarray, List[Dict]]:
    """One ``(size, size, 3)`` BGR image and its visible objects."""
    img = background(rng, size, size)
    labels = np.zeros((size, size), np.int32)  # 0 = background, k = object k
    kinds = []
    for _ in range(int(rng.integers(1, max_objects + 1))):
        side = float(rng.uniform(12, 60))
        center = tuple(rng.uniform(side / 2, size - side / 2, size=2))
        kind = SHAPE_KINDS[int(rng.integers(len(SHAPE_KINDS)))]
        mask = shape_mask(kind, center, side, float(rng.uniform(0, 360)),
                          size, size)
        if not _keeps_half_visible(labels, mask, len(kinds)):
            continue
        paint(rng, img, mask, distinct_colour(rng, img, mask))
        kinds.append(kind)
        labels[mask] = len(kinds)
    objects = []
    for index, kind in enumerate(kinds, start=1):
        visible = (labels == index).astype(np.uint8)
        ys, xs = np.nonzero(visible)
        contours, _ = cv2.findContours(visible, cv2.RETR_EXTERNAL,
                                       cv2.CHAIN_APPROX_SIMPLE)
        polygons = [c.reshape(-1).astype(float).tolist() for c in contours
                    if len(c) >= 3]
        objects.append(dict(
            category_id=SHAPE_KINDS.index(kind) + 1,
            bbox=[float(xs.min()), float(ys.min()),
                  float(xs.max() - xs.min() + 1),
                  float(ys.max() - ys.min() + 1)],
            area=float(visible.sum()),
            segmentation=polygons,
            iscrowd=0))
    return img, objects


def _keeps_half_visible(labels: np.ndarray, mask: np.ndarray,
                        count: int) -> bool:
    """Whether painting ``mask`` leaves each earlier object >= half visible."""
    for index in range(1, count + 1):
        own = labels == index
        if (own & ~mask).sum() < 0.5 * own.sum():
            return False
    return True


def make_toy_coco(root: Union[str, Path],
                  splits: Dict[str, int] = DEFAULT_SPLITS,
                  image_size: int = 128, max_objects: int = 4,
                  seed: int = 0) -> Dict[str, str]:
    """Write the dataset under ``root``; return split -> annotation file.

    Args:
        root: dataset directory (``data_root`` in the toy configs).
        splits: image folder name -> number of images. Annotation files are
            named ``instances_<split>.json`` after the folder, as in COCO.
        image_size: side of the square images in pixels.
        max_objects: at most this many objects are attempted per image.
        seed: base seed; each split draws from its own stream.
    """
    if image_size < 64:
        raise ValueError(f'image_size={image_size} is too small for 12-60 px '
                         'objects; use at least 64')
    root = Path(root)
    categories = [dict(id=i + 1, name=name)
                  for i, name in enumerate(TOY_COCO_CLASSES)]
    ann_files = {}
    for split_index, (split, num_images) in enumerate(splits.items()):
        rng = np.random.default_rng([seed, split_index])
        (root / split).mkdir(parents=True, exist_ok=True)
        images, annotations = [], []
        for image_id in range(1, num_images + 1):
            img, objects = _draw_image(rng, image_size, max_objects)
            file_name = f'{image_id:012d}.jpg'
            cv2.imwrite(str(root / split / file_name), img,
                        [cv2.IMWRITE_JPEG_QUALITY, 95])
            images.append(dict(id=image_id, file_name=file_name,
                               height=image_size, width=image_size))
            for obj in objects:
                annotations.append(dict(obj, id=len(annotations) + 1,
                                        image_id=image_id))
        ann_file = root / 'annotations' / f'instances_{split}.json'
        ann_file.parent.mkdir(parents=True, exist_ok=True)
        ann_file.write_text(json.dumps(dict(
            images=images, annotations=annotations, categories=categories)))
        ann_files[split] = osp.join('annotations', ann_file.name)
    return ann_files
