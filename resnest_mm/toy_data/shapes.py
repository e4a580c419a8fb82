"""Drawing primitives shared by the toy detection and segmentation datasets.

Every shape is rasterised as a boolean mask first, so one drawing gives the
pixels to paint, the tight box, the area and (for segmentation) the label map.
"""
from typing import Tuple

import cv2
import numpy as np

#: Shape kinds, in class-index order.
SHAPE_KINDS = ('circle', 'square', 'triangle')


def background(rng: np.random.Generator, height: int,
               width: int) -> np.ndarray:
    """A ``(H, W, 3)`` uint8 image: a random colour gradient plus noise.

    Gradients and noise keep the task from being solvable by colour alone.
    """
    start, end = rng.uniform(40, 215, size=(2, 3))
    ramp = np.linspace(0.0, 1.0, width)[None, :, None]
    img = start + (end - start) * ramp
    img = np.broadcast_to(img, (height, width, 3)) + rng.normal(
        0, 12, size=(height, width, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def shape_mask(kind: str, center: Tuple[float, float], size: float,
               angle: float, height: int, width: int) -> np.ndarray:
    """Boolean ``(H, W)`` mask of one shape.

    ``size`` is the side (square, triangle) or diameter (circle) in pixels;
    ``angle`` rotates squares and triangles, in degrees.
    """
    mask = np.zeros((height, width), np.uint8)
    cx, cy = center
    if kind == 'circle':
        cv2.circle(mask, (round(cx), round(cy)), round(size / 2), 1, -1)
    elif kind in ('square', 'triangle'):
        corners = 4 if kind == 'square' else 3
        radius = size / (2 ** 0.5 if corners == 4 else 3 ** 0.5)
        theta = np.deg2rad(angle) + 2 * np.pi * np.arange(corners) / corners
        pts = np.stack([cx + radius * np.cos(theta),
                        cy + radius * np.sin(theta)], axis=1)
        cv2.fillPoly(mask, [np.round(pts).astype(np.int32)], 1)
    else:
        raise ValueError(f'kind={kind!r} is not a toy shape; choose one of '
                         f'{SHAPE_KINDS}')
    return mask.astype(bool)


def distinct_colour(rng: np.random.Generator, img: np.ndarray,
                    mask: np.ndarray) -> np.ndarray:
    """A random colour at least 60 grey levels away from what it covers."""
    under = img[mask].mean(axis=0) if mask.any() else np.full(3, 128.0)
    while True:
        colour = rng.uniform(0, 255, size=3)
        if np.abs(colour - under).max() >= 60:
            return colour


def paint(rng: np.random.Generator, img: np.ndarray, mask: np.ndarray,
          colour: np.ndarray) -> None:
    """Paint ``mask`` pixels of ``img`` in place with a lightly noisy colour."""
    noise = rng.normal(0, 6, size=(int(mask.sum()), 3))
    img[mask] = np.clip(colour + noise, 0, 255).astype(np.uint8)
