"""Sternum, jugular notch and medial clavicle heads of a chest CT, slice by slice.

Bone is ``BONE_HU < HU < METAL_HU`` at least ``SKIN_MARGIN_MM`` inside the body (so jewellery
and skin markers on the surface never count), holes filled per slice (the marrow). The
sternum is followed upwards from the slice of the carina: there, it is the bone component in
front of the trachea nearest to it left-right; in each slice above, the component that crosses
the column of the sternum centre of the slice below. Where it ends (one missing slice is
bridged: the manubriosternal joint) is the top of the manubrium, the jugular (suprasternal)
notch. The medial clavicle heads lie one slice above the manubrium, on each side of the
notch: the bone component in front of the trachea nearest the notch left-right (the first ribs
lie further out and further back).

Axes as in :mod:`.airway`: array ``(z, y, x)``, z up, x to the patient's left, y posterior.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import numpy as np

from ...utils.exceptions import InvalidInputError

BONE_HU = 200.0
METAL_HU = 2000.0
SKIN_MARGIN_MM = 3.0
MIN_BONE_AREA_MM2 = 30.0
STERNUM_SEARCH_MM = 40.0     # left-right distance of the sternum from the trachea at the carina
NOTCH_HALF_WIDTH_MM = 15.0   # columns of the manubrium that define the notch point
CLAVICLE_MIN_OFFSET_MM = 8.0
CLAVICLE_MAX_OFFSET_MM = 60.0
CLAVICLE_HEAD_MM = 15.0      # the medial end: this far from the most medial bone pixel


def bone_components(ct: np.ndarray, inner_body: np.ndarray, z: int, pixel_area: float
                    ) -> List[np.ndarray]:
    """Boolean masks of the 2D bone components of slice ``z`` (holes filled) of at least
    ``MIN_BONE_AREA_MM2``."""
    from scipy import ndimage as ndi
    bone = (ct[z] > BONE_HU) & (ct[z] < METAL_HU) & inner_body[z]
    bone = ndi.binary_fill_holes(bone)
    lab, n = ndi.label(bone, structure=np.ones((3, 3), bool))
    if n == 0:
        return []
    counts = np.bincount(lab.ravel())
    return [lab == i for i in range(1, n + 1) if counts[i] * pixel_area >= MIN_BONE_AREA_MM2]


def _centroid(mask: np.ndarray) -> Tuple[float, float]:
    yy, xx = np.nonzero(mask)
    return float(yy.mean()), float(xx.mean())


def inner_body_mask(body: np.ndarray, spacing_xyz) -> np.ndarray:
    """``body`` eroded in-plane by ``SKIN_MARGIN_MM``."""
    from scipy import ndimage as ndi
    r = max(int(round(SKIN_MARGIN_MM / float(min(spacing_xyz[:2])))), 1)
    se = np.zeros((3, 3, 3), bool)
    se[1] = ndi.generate_binary_structure(2, 1)
    return ndi.binary_erosion(body, structure=se, iterations=r)


def find_sternum_top(ct: np.ndarray, inner_body: np.ndarray, spacing_xyz, start_z: int,
                     trachea_yx: Tuple[float, float], source: str = 'image'
                     ) -> Tuple[int, np.ndarray, Dict[int, np.ndarray]]:
    """Follow the sternum up from slice ``start_z``.

    Args:
        ct, inner_body: HU volume and the body mask without its skin margin.
        spacing_xyz: voxel size (mm), ITK order.
        start_z: slice of the carina.
        trachea_yx: trachea centre ``(y, x)`` (array indices) at ``start_z``.
        source: name used in error messages.

    Returns:
        ``(z_top, notch_yx, masks)``: the top slice of the manubrium, the notch point ``(y, x)``
        there (centroid of the manubrium within ``NOTCH_HALF_WIDTH_MM`` of its centre) and the
        sternum mask of every followed slice.

    Raises:
        InvalidInputError: no sternum in front of the trachea at the carina.
    """
    sx, sy, _ = (float(s) for s in spacing_xyz)
    px = sx * sy
    ty, tx = trachea_yx
    best, best_dx = None, None
    for comp in bone_components(ct, inner_body, start_z, px):
        cy, cx = _centroid(comp)
        dx = abs(cx - tx) * sx
        if cy < ty and dx <= STERNUM_SEARCH_MM and (best is None or dx < best_dx):
            best, best_dx = comp, dx
    if best is None:
        raise InvalidInputError(
            f'{source}: no sternum (bone > {BONE_HU:g} HU in front of the trachea, within '
            f'{STERNUM_SEARCH_MM:g} mm of it left-right) at the slice of the carina.')
    cols = np.arange(best.shape[1])

    def midline_part(comp, centre_x):
        return comp & (np.abs(cols - centre_x) * sx <= NOTCH_HALF_WIDTH_MM)[None, :]

    masks = {start_z: midline_part(best, _centroid(best)[1])}
    z_top, gap = start_z, 0
    band = max(int(round(3.0 / sx)), 1)
    for z in range(start_z + 1, ct.shape[0]):
        # the sternum crosses the column of the centre below; clavicles or ribs joined to it
        # in this slice are cut off at NOTCH_HALF_WIDTH_MM so the centre cannot drift along
        pcx = _centroid(masks[z_top])[1]
        lo, hi = int(round(pcx)) - band, int(round(pcx)) + band + 1
        hit = None
        for comp in bone_components(ct, inner_body, z, px):
            part = midline_part(comp, pcx)
            if comp[:, max(lo, 0):hi].any() and _centroid(part)[0] < ty:
                hit = part
                break
        if hit is None:
            gap += 1
            if gap > 1:
                break
            continue
        gap, z_top = 0, z
        masks[z] = hit
    return z_top, np.array(_centroid(masks[z_top])), masks


def find_clavicle_heads(ct: np.ndarray, inner_body: np.ndarray, spacing_xyz, z_notch: int,
                        notch_yx, trachea_y: float
                        ) -> Dict[str, Optional[np.ndarray]]:
    """The medial heads of both clavicles, array index ``(z, y, x)`` (or None per side).

    In the slice above the manubrium top, on each side of the notch: the bone component in
    front of the trachea (centroid y < ``trachea_y``) whose centroid lies
    ``CLAVICLE_MIN_OFFSET_MM``-``CLAVICLE_MAX_OFFSET_MM`` from the notch left-right, the one
    nearest to it; the head is the centroid of its part within ``CLAVICLE_HEAD_MM`` of its most
    medial pixel.
    """
    sx, sy, _ = (float(s) for s in spacing_xyz)
    z = z_notch + 1
    out = {'right': None, 'left': None}
    if z >= ct.shape[0]:
        return out
    ny, nx = notch_yx
    best = {}
    for comp in bone_components(ct, inner_body, z, sx * sy):
        cy, cx = _centroid(comp)
        off = (cx - nx) * sx
        side = 'left' if off > 0 else 'right'  # x grows to the patient's left
        if cy >= trachea_y or not CLAVICLE_MIN_OFFSET_MM <= abs(off) <= CLAVICLE_MAX_OFFSET_MM:
            continue
        if side not in best or abs(off) < best[side][0]:
            best[side] = (abs(off), comp)
    cols = np.arange(ct.shape[2])
    for side, (_, comp) in best.items():
        xx = np.nonzero(comp.any(axis=0))[0]
        medial = xx.max() if side == 'right' else xx.min()
        head = comp & (np.abs(cols - medial) * sx <= CLAVICLE_HEAD_MM)[None, :]
        out[side] = np.array([z, *_centroid(head)])
    return out
