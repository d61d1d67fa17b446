"""Trachea, carina and main bronchi of a chest CT, slice by slice (rules in mm, any spacing).

The airway lumen is air (< ``AIR_HU``) inside the body; slice by slice it is a set of 2D
connected components. The trachea is the round, clearly-air component near the left-right
centre of the body that runs down from the top of the scan for at least
``TRACHEA_MIN_SLICES`` slices; it is followed downwards (a component of the next slice that
overlaps it) until it divides into two lumens: the carina lies between the last slice with
one lumen and the first slice with two, at the midpoint of the two main-bronchus centres.
The two main bronchi are then followed the same way, each on its own, for a few slices (their
lumens are removed from the lungs before the lungs are split into left and right).

The array axes are ``(z, y, x)`` with ``z`` increasing upwards (head), ``x`` to the patient's
left and ``y`` posterior (LPS, identity direction); :func:`..detect.detect_chest_landmarks`
checks that before calling these functions.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Tuple

import numpy as np

from ...utils.exceptions import InvalidInputError

AIR_HU = -500.0           # lumen threshold; lung parenchyma is about -850, the lumen -1000
LUMEN_MEDIAN_HU = -900.0  # a trachea candidate is clearly air, not partial-volume lung
TRACHEA_AREA_MM2 = (60.0, 700.0)
TRACHEA_MAX_OFFSET_MM = 50.0   # from the left-right centre of the body
TRACHEA_MIN_SLICES = 5
BRANCH_MIN_AREA_MM2 = 15.0      # a lumen counts from this area on
MERGED_AREA_MM2 = 1000.0        # a larger "lumen" has run into the lung


@dataclass
class Lumen:
    """One 2D airway component: slice ``z``, boolean ``mask`` of the slice, ``area`` mm²,
    centroid ``(y, x)`` in array indices."""

    z: int
    mask: np.ndarray
    area: float
    centroid: Tuple[float, float]


def slice_lumens(ct: np.ndarray, body: np.ndarray, z: int, pixel_area: float,
                 min_area: float = BRANCH_MIN_AREA_MM2) -> List[Lumen]:
    """The 2D air components (``< AIR_HU`` inside ``body``) of slice ``z`` of at least
    ``min_area`` mm²."""
    from scipy import ndimage as ndi
    lab, n = ndi.label((ct[z] < AIR_HU) & body[z], structure=np.ones((3, 3), bool))
    if n == 0:
        return []
    counts = np.bincount(lab.ravel())
    out = []
    for i in np.nonzero(counts * pixel_area >= min_area)[0]:
        if i == 0:
            continue
        m = lab == i
        yy, xx = np.nonzero(m)
        out.append(Lumen(z, m, float(counts[i] * pixel_area), (yy.mean(), xx.mean())))
    return out


def _is_trachea_candidate(lumen: Lumen, ct: np.ndarray, body_centre_x: float,
                          spacing_xy: Tuple[float, float]) -> bool:
    lo, hi = TRACHEA_AREA_MM2
    if not lo <= lumen.area <= hi:
        return False
    if abs(lumen.centroid[1] - body_centre_x) * spacing_xy[0] > TRACHEA_MAX_OFFSET_MM:
        return False
    if np.median(ct[lumen.z][lumen.mask]) > LUMEN_MEDIAN_HU:
        return False
    yy, xx = np.nonzero(lumen.mask)
    box = (np.ptp(yy) + 1) * (np.ptp(xx) + 1)
    return np.count_nonzero(lumen.mask) / box > 0.4  # round-ish, not a thin crescent


def _overlapping(lumens: List[Lumen], prev: np.ndarray, grow_px: int) -> List[Lumen]:
    """The lumens that overlap ``prev`` grown by ``grow_px``; a lung-sized component (the
    lumen has run into the lung, or the lung lies within the margin) only when nothing else
    does."""
    from scipy import ndimage as ndi
    near = ndi.binary_dilation(prev, iterations=max(grow_px, 1))
    hits = [lu for lu in lumens if (lu.mask & near).any()]
    small = [lu for lu in hits if lu.area <= MERGED_AREA_MM2]
    return small or hits


@dataclass
class Airway:
    """The followed airway: ``trachea`` (top to bottom), the carina (array index
    ``(z, y, x)``, fractional) and the main bronchi (top to bottom) of each side."""

    trachea: List[Lumen]
    carina_index: np.ndarray
    right_bronchus: List[Lumen]
    left_bronchus: List[Lumen]

    def mask(self, shape) -> np.ndarray:
        """Boolean volume of every followed lumen."""
        out = np.zeros(shape, dtype=bool)
        for lu in self.trachea + self.right_bronchus + self.left_bronchus:
            out[lu.z] |= lu.mask
        return out


def find_airway(ct: np.ndarray, body: np.ndarray, spacing_xyz, source: str = 'image'
                ) -> Airway:
    """Follow the trachea from the top of the scan to the carina, then both main bronchi.

    Args:
        ct: HU volume ``(z, y, x)``, z upwards.
        body: body mask of ``ct``.
        spacing_xyz: voxel size (mm), ITK order.
        source: name used in error messages.

    Raises:
        InvalidInputError: no trachea, or it never divides (the scan misses the carina).
    """
    sx, sy, _ = (float(s) for s in spacing_xyz)
    px = sx * sy
    grow = int(round(1.5 / min(sx, sy)))
    nz = ct.shape[0]
    cols = np.nonzero(body.any(axis=(0, 1)))[0]
    centre_x = 0.5 * (cols.min() + cols.max()) if cols.size else ct.shape[2] / 2

    def candidates(z):
        return [lu for lu in slice_lumens(ct, body, z, px)
                if _is_trachea_candidate(lu, ct, centre_x, (sx, sy))]

    seed = None
    for z in range(nz - 1, TRACHEA_MIN_SLICES - 2, -1):
        for cand in candidates(z):
            run, prev = [cand], cand.mask
            for z2 in range(z - 1, z - TRACHEA_MIN_SLICES, -1):
                nxt = _overlapping(candidates(z2), prev, grow)
                if len(nxt) != 1:
                    break
                run.append(nxt[0])
                prev = nxt[0].mask
            if len(run) == TRACHEA_MIN_SLICES:
                seed = cand
                break
        if seed is not None:
            break
    if seed is None:
        raise InvalidInputError(
            f'{source}: no trachea found (a round air lumen of {TRACHEA_AREA_MM2} mm² near the '
            f'body centre over {TRACHEA_MIN_SLICES} slices); is this a chest CT in HU whose '
            'field of view includes the upper chest?')

    trachea = [seed]
    for z in range(seed.z - 1, -1, -1):
        nxt = _overlapping(slice_lumens(ct, body, z, px), trachea[-1].mask, grow)
        if len(nxt) >= 2:
            nxt = sorted(nxt, key=lambda lu: -lu.area)[:2]
            right, left = sorted(nxt, key=lambda lu: lu.centroid[1])  # x grows to the left
            cy = 0.5 * (right.centroid[0] + left.centroid[0])
            cx = 0.5 * (right.centroid[1] + left.centroid[1])
            carina = np.array([z + 0.5, cy, cx])
            return Airway(trachea, carina, follow_bronchus(ct, body, right, px, grow),
                          follow_bronchus(ct, body, left, px, grow))
        if len(nxt) == 0 or nxt[0].area > MERGED_AREA_MM2:
            break
        trachea.append(nxt[0])
    raise InvalidInputError(
        f'{source}: the trachea (from slice {seed.z}) ends at slice {trachea[-1].z} without '
        'dividing into two main bronchi; the scan must include the carina.')


def follow_bronchus(ct, body, start: Lumen, pixel_area: float, grow_px: int,
                    max_slices: int = 8) -> List[Lumen]:
    """Follow one main bronchus down from ``start`` while it stays one lumen (at most
    ``max_slices``); stops where it divides or runs into the lung."""
    run = [start]
    for z in range(start.z - 1, max(start.z - max_slices, -1), -1):
        nxt = _overlapping(slice_lumens(ct, body, z, pixel_area), run[-1].mask, grow_px)
        if len(nxt) != 1 or nxt[0].area > MERGED_AREA_MM2:
            break
        run.append(nxt[0])
    return run
