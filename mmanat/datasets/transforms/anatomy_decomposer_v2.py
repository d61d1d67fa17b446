"""Anatomy Decomposer of Adam v2 (Hosseinzadeh Taher et al., CVPR 2024, Sec. 3 and Fig. 2):
at granularity g the anchor is a random square crop of side (image side) / 2^g, and its parts
are its 2 x 2 quadrants."""
from __future__ import annotations

from typing import List, Tuple

import numpy as np
from mmcv.transforms import BaseTransform

from mmanat.registry import TRANSFORMS
from mmanat.utils.exceptions import InvalidInputError


def quadrant_boxes(side: int) -> List[Tuple[int, int, int, int]]:
    """The 4 quadrants ``(x0, y0, x1, y1)`` (end exclusive) of a ``side x side`` square, in
    row-major order (top-left, top-right, bottom-left, bottom-right); the split is at
    ``side // 2``, so they tile the square exactly."""
    h = int(side) // 2
    s = int(side)
    return [(0, 0, h, h), (h, 0, s, h), (0, h, h, s), (h, h, s, s)]


@TRANSFORMS.register_module()
class AnatomyDecomposerV2(BaseTransform):
    """Crop the anchor of granularity ``g`` from ``results['img']`` (2D ``(H, W)``).

    The anchor is a square of side ``S = min(H, W) // 2^g`` at a uniformly random integer
    position inside the image (``g = 0`` on a square image: the whole image); its parts are
    its 4 quadrants (:func:`quadrant_boxes`).

    Writes ``results['img']`` (the anchor), ``results['ad_box']`` = ``(x0, y0, x1, y1)`` of the
    anchor in the incoming image (end exclusive), ``results['ad_parts']`` = the 4 quadrant
    boxes in the anchor's frame, ``results['ad_granularity'] = g``. ``landmarks`` (``(L, 2)``
    pixel column, row), when present, are shifted into the anchor's frame and
    ``landmark_valid`` restricted to it.

    The granularity changes during training through :meth:`set_granularity`, called by
    :class:`~mmanat.engine.hooks.AnatomyStageHookV2` (which restarts the dataloader workers,
    as for the v1 decomposer).

    Args:
        granularity: ``g >= 0``.
        min_anchor_size: refuse anchors smaller than this (pixels; quadrants are half).
    """

    def __init__(self, granularity: int = 0, min_anchor_size: int = 8):
        self.min_anchor_size = int(min_anchor_size)
        self.granularity = 0
        self.set_granularity(granularity)

    def set_granularity(self, granularity: int) -> None:
        """Set ``g`` (0 = anchors of the full image side)."""
        g = int(granularity)
        if g < 0 or g != granularity:
            raise InvalidInputError(f'AnatomyDecomposerV2: granularity must be an integer '
                                    f'>= 0, got {granularity!r}.')
        self.granularity = g

    def anchor_box(self, shape: Tuple[int, int], rng=np.random) -> Tuple[int, int, int, int]:
        """A random anchor ``(x0, y0, x1, y1)`` of the current granularity for an image of
        ``shape = (H, W)``."""
        h, w = int(shape[0]), int(shape[1])
        side = min(h, w) // (2 ** self.granularity)
        if side < max(self.min_anchor_size, 2):
            raise InvalidInputError(
                f'AnatomyDecomposerV2: a {h}x{w} image at granularity {self.granularity} gives '
                f'anchors of {side} px, under min_anchor_size={self.min_anchor_size}; use '
                'larger images or a smaller granularity.')
        x0 = int(rng.randint(0, w - side + 1))
        y0 = int(rng.randint(0, h - side + 1))
        return x0, y0, x0 + side, y0 + side

    def transform(self, results: dict) -> dict:
        img = results.get('img')
        if img is None or np.ndim(img) != 2:
            raise InvalidInputError('AnatomyDecomposerV2 needs results["img"] as a 2D (H, W) '
                                    f'array, got {None if img is None else np.shape(img)}.')
        x0, y0, x1, y1 = self.anchor_box(img.shape)
        results['img'] = np.ascontiguousarray(img[y0:y1, x0:x1])
        results['img_shape'] = results['img'].shape
        results['ad_box'] = (x0, y0, x1, y1)
        results['ad_parts'] = quadrant_boxes(x1 - x0)
        results['ad_granularity'] = self.granularity
        if results.get('landmarks') is not None:
            lm = np.asarray(results['landmarks'], dtype=np.float32) - np.float32([x0, y0])
            results['landmarks'] = lm
            inside = np.all((lm >= -0.5) & (lm < np.float32(x1 - x0) - 0.5), axis=1)
            valid = results.get('landmark_valid')
            results['landmark_valid'] = inside if valid is None else np.asarray(valid) & inside
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(granularity={self.granularity})'
