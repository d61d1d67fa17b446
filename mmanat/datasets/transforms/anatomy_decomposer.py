"""Anatomy Decomposer (Adam: Hosseinzadeh Taher et al., DART 2023): the anchor is the whole
image or one cell of an n x n grid."""
from __future__ import annotations

from typing import Tuple

import numpy as np
from mmcv.transforms import BaseTransform

from mmanat.registry import TRANSFORMS
from mmanat.utils.exceptions import InvalidInputError


def grid_cell_box(shape: Tuple[int, int], n: int, row: int, col: int) -> Tuple[int, int, int, int]:
    """Pixel box ``(x0, y0, x1, y1)`` (end exclusive) of cell ``(row, col)`` of an ``n x n``
    grid over an image of ``shape = (H, W)``. Cell edges are ``floor(k * H / n)`` (and
    likewise in x), so the cells tile the image exactly, sizes differing by at most one pixel.
    ``n = 0`` (or 1) gives the whole image."""
    h, w = int(shape[0]), int(shape[1])
    if n <= 1:
        return 0, 0, w, h
    return (col * w // n, row * h // n, (col + 1) * w // n, (row + 1) * h // n)


@TRANSFORMS.register_module()
class AnatomyDecomposer(BaseTransform):
    """Crop the anchor of granularity ``n`` from ``results['img']`` (a 2D ``(H, W)`` array).

    ``n = 0``: the whole image; ``n > 0``: the image is split into an ``n x n`` grid of equal
    cells (see :func:`grid_cell_box`) and one cell, drawn uniformly, becomes the image.

    Records ``results['ad_cell'] = (row, col, n)`` (``(0, 0, 0)`` for the whole image) and
    ``results['ad_box'] = (x0, y0, x1, y1)`` (pixels of the incoming image, end exclusive).
    ``landmarks`` (``(L, 2)`` pixel ``(column, row)``), when present, are shifted into the
    cell's frame and ``landmark_valid`` is restricted to the cell.

    Changing the granularity during training: :meth:`set_granularity` changes it in the
    process that calls it. Dataloader workers hold their own copy of the dataset and its
    pipeline, so :class:`~mmanat.engine.hooks.AnatomyStageHook` sets the granularity on the
    main-process dataset and then restarts the dataloader iterator (shutting persistent
    workers down), so the new workers start from the updated copy. Anybody else changing it
    mid-run must do the same (``num_workers=0`` needs nothing more).

    Args:
        granularity: ``n >= 0``.
        min_cell_size: refuse grids whose cells would be smaller than this (pixels).
    """

    def __init__(self, granularity: int = 0, min_cell_size: int = 4):
        self.min_cell_size = int(min_cell_size)
        self.granularity = 0
        self.set_granularity(granularity)

    def set_granularity(self, granularity: int) -> None:
        """Set ``n`` (0 = whole image)."""
        n = int(granularity)
        if n < 0 or n != granularity:
            raise InvalidInputError(f'AnatomyDecomposer: granularity must be an integer >= 0 '
                                    f'(0 = whole image), got {granularity!r}.')
        self.granularity = n

    def transform(self, results: dict) -> dict:
        img = results.get('img')
        if img is None or np.ndim(img) != 2:
            raise InvalidInputError('AnatomyDecomposer needs results["img"] as a 2D (H, W) '
                                    f'array, got {None if img is None else np.shape(img)}.')
        n = self.granularity
        h, w = img.shape
        if n > 1 and min(h, w) // n < self.min_cell_size:
            raise InvalidInputError(
                f'AnatomyDecomposer: a {h}x{w} image split {n}x{n} gives cells under '
                f'{self.min_cell_size} px; use larger images or a smaller granularity.')
        if n == 0:
            row = col = 0
        else:
            cell = int(np.random.randint(n * n))
            row, col = divmod(cell, n)
        x0, y0, x1, y1 = grid_cell_box((h, w), n, row, col)
        results['img'] = np.ascontiguousarray(img[y0:y1, x0:x1])
        results['img_shape'] = results['img'].shape
        results['ad_cell'] = (row, col, n)
        results['ad_box'] = (x0, y0, x1, y1)
        if results.get('landmarks') is not None:
            lm = np.asarray(results['landmarks'], dtype=np.float32) - np.float32([x0, y0])
            results['landmarks'] = lm
            inside = np.all((lm >= -0.5) & (lm < np.float32([x1 - x0, y1 - y0]) - 0.5), axis=1)
            valid = results.get('landmark_valid')
            results['landmark_valid'] = inside if valid is None else np.asarray(valid) & inside
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(granularity={self.granularity})'
