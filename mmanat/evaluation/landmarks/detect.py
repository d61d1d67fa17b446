"""Rule-based anatomical landmarks of a chest CT, in world millimetres (LPS).

The landmarks (:data:`LANDMARK_RULES` says how each is found) are those that a 5 mm axial CT
shows without ambiguity and that the rules below find on both sample chest CTs
(``data/samples/ct/lung1.nrrd``, ``lung2.nrrd``); the figures of
``docs/en/user_guides/real_landmarks.md`` show them. Every rule works in millimetres on the
array ``(z, y, x)``, slice by slice, with fixed thresholds: the result is deterministic.
"""
from __future__ import annotations

from typing import Dict

import numpy as np

from ...structures.image import MedicalImage
from ...structures.points import PointSet
from ...utils.exceptions import InvalidInputError

LUNG_MIN_ML = 30.0       # lung components (after removing the airway) at least this big
APEX_MIN_AREA_MM2 = 20.0  # the top slice of a lung: the first with this much lung per side

LANDMARK_RULES: Dict[str, str] = {
    'carina': 'airway lumen (< -500 HU inside the body) followed slice by slice from the top '
              'of the trachea; between the last slice with one lumen and the first with two, at '
              'the midpoint of the two main-bronchus centres',
    'lung_apex_right': 'lungs = air (< -500 HU) inside the body without the followed airway, '
                       'components above the carina of at least 30 mL; right of the carina: '
                       'centre of the lung in the top slice with at least 20 mm2 of it',
    'lung_apex_left': 'as lung_apex_right, left of the carina',
    'jugular_notch': 'sternum (bone 200-2000 HU, 3 mm inside the skin) in front of the trachea '
                     'at the carina, followed upwards (one missing slice bridged); centre of '
                     'its top slice within 15 mm of its midline',
    'clavicle_head_right': 'slice above the top of the manubrium: the bone component in front '
                           'of the trachea nearest the notch on the right (8-60 mm from it); '
                           'centre of its 15 mm nearest the midline',
    'clavicle_head_left': 'as clavicle_head_right, on the left',
}
LANDMARK_NAMES = tuple(LANDMARK_RULES)


def _check_axes(image: MedicalImage) -> None:
    src = image.path or '<in-memory image>'
    if image.ndim != 3:
        raise InvalidInputError(f'{src}: chest landmarks need a 3D CT, got shape {image.shape}.')
    if not np.allclose(image.direction, np.eye(3), atol=1e-3):
        raise InvalidInputError(
            f'{src}: chest landmarks need an axial CT in LPS order (identity direction), got '
            f'direction {image.direction.round(3).tolist()}; resample it to an identity '
            'direction first (mmanat.structures.resample).')


def _lung_apices(ct, body, airway_mask, carina_index, spacing_xyz, source):
    from scipy import ndimage as ndi
    sx, sy, sz = (float(s) for s in spacing_xyz)
    grow = np.zeros((3, 3, 3), bool)
    grow[1] = True
    airway = ndi.binary_dilation(airway_mask, structure=grow, iterations=2)
    lab, n = ndi.label((ct < -500) & body & ~airway)
    counts = np.bincount(lab.ravel())
    zc = int(np.ceil(carina_index[0]))
    keep = np.zeros(n + 1, bool)
    big = np.nonzero(counts * sx * sy * sz / 1000.0 >= LUNG_MIN_ML)[0]
    for i, sl in zip(range(1, n + 1), ndi.find_objects(lab)):
        if i in big and sl[0].stop - 1 >= zc:
            keep[i] = True
    lungs = keep[lab]
    cols = np.arange(ct.shape[2])
    out = {}
    for side, sel in (('right', cols < carina_index[2]), ('left', cols >= carina_index[2])):
        part = lungs & sel[None, None, :]
        areas = part.sum(axis=(1, 2)) * sx * sy
        zs = np.nonzero(areas >= APEX_MIN_AREA_MM2)[0]
        if zs.size == 0:
            raise InvalidInputError(f'{source}: no {side} lung found above the carina.')
        z = int(zs.max())
        yy, xx = np.nonzero(part[z])
        out[side] = np.array([z, yy.mean(), xx.mean()])
    return out, lungs


def detect_chest_landmarks(image: MedicalImage, return_masks: bool = False):
    """Find the landmarks of :data:`LANDMARK_RULES` in a chest CT.

    Args:
        image: an axial chest CT in HU with identity direction (LPS), field of view from the
            neck (above the lung apices) to below the carina.
        return_masks: also return the masks the rules used (airway, lungs, sternum) in a dict,
            for figures and checks.

    Returns:
        :class:`~mmanat.structures.PointSet` with one point per name of
        :data:`LANDMARK_NAMES`, in that order, world LPS mm (voxel centres in z: the rules
        work per slice); with ``return_masks`` the tuple ``(points, masks)``.

    Raises:
        InvalidInputError: not a 3D LPS-ordered CT, or a structure is not found (the message
            names it).
    """
    from ...structures.body import body_mask
    from .airway import find_airway
    from .bones import find_clavicle_heads, find_sternum_top, inner_body_mask
    _check_axes(image)
    src = image.path or '<in-memory image>'
    ct = image.array.astype(np.float32)
    body = body_mask(image, modality='CT')
    airway = find_airway(ct, body, image.spacing, src)
    apices, lungs = _lung_apices(ct, body, airway.mask(ct.shape), airway.carina_index,
                                 image.spacing, src)
    inner = inner_body_mask(body, image.spacing)
    last = airway.trachea[-1]
    z_top, notch_yx, sternum = find_sternum_top(ct, inner, image.spacing, last.z,
                                                last.centroid, src)
    heads = find_clavicle_heads(ct, inner, image.spacing, z_top, notch_yx, last.centroid[0])
    for side, head in heads.items():
        if head is None:
            raise InvalidInputError(f'{src}: no {side} clavicle head found next to the jugular '
                                    f'notch (slice {z_top + 1}).')
    idx = {
        'carina': airway.carina_index,
        'lung_apex_right': apices['right'],
        'lung_apex_left': apices['left'],
        'jugular_notch': np.array([z_top, *notch_yx]),
        'clavicle_head_right': heads['right'],
        'clavicle_head_left': heads['left'],
    }
    zyx = np.stack([idx[n] for n in LANDMARK_NAMES])
    points = PointSet(image.array_index_to_world(zyx), names=list(LANDMARK_NAMES))
    if not return_masks:
        return points
    sternum_mask = np.zeros(ct.shape, bool)
    for z, m in sternum.items():
        sternum_mask[z] = m
    return points, dict(airway=airway.mask(ct.shape), lungs=lungs, sternum=sternum_mask)
