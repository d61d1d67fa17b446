"""The structure table of the synthetic torso phantom and its landmark table.

Every structure has a fixed integer label id, a CT value range in Hounsfield units (native and
with intravenous contrast; a subject draws one value per structure inside the range), T1-like
and T2-like MR intensities (relative, 0..1) and a tissue class the renderers use for textures
(bone cortex, bowel gas). The same names and ids hold for every subject.

Landmarks are named anatomical points with a *parent* structure: the landmark always lies
inside its parent (the tests check it for many subjects).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional, Tuple

import numpy as np

__all__ = [
    'Structure', 'STRUCTURES', 'STRUCTURE_BY_NAME', 'LABEL_NAMES', 'VERTEBRAE',
    'LANDMARK_PARENTS', 'LANDMARK_NAMES', 'structure_lut', 'kind_mask_lut', 'MAX_LABEL'
]


@dataclass(frozen=True)
class Structure:
    """One labelled structure.

    Args:
        name: unique name (snake case).
        label: label id in the label map (0 is background/air).
        hu: native CT value range ``(lo, hi)`` in HU; a subject draws its value uniformly.
        hu_contrast: range with intravenous contrast (portal-venous like); ``None``: as ``hu``.
        t1: T1-weighted-like relative intensity (0..1), jittered per subject.
        t2: T2-weighted-like relative intensity (0..1).
        kind: tissue class: ``'air'``, ``'fat'``, ``'soft'``, ``'fluid'``, ``'bone'``,
            ``'gut'`` (bowel content with gas pockets), ``'device'`` (the CT table).
    """

    name: str
    label: int
    hu: Tuple[float, float]
    hu_contrast: Optional[Tuple[float, float]]
    t1: float
    t2: float
    kind: str

    def hu_range(self, contrast: bool) -> Tuple[float, float]:
        """CT value range for a native (``contrast=False``) or contrast-enhanced scan."""
        return tuple(self.hu_contrast if (contrast and self.hu_contrast) else self.hu)


VERTEBRAE = tuple([f'T{i}' for i in range(1, 13)] + [f'L{i}' for i in range(1, 6)])

_S = Structure
# name, label, native HU, contrast HU, T1, T2, kind
_TABLE = [
    _S('background', 0, (-1000, -1000), None, 0.0, 0.0, 'air'),
    _S('skin', 1, (10, 50), None, 0.55, 0.45, 'soft'),
    _S('subcutaneous_fat', 2, (-115, -85), None, 0.95, 0.80, 'fat'),
    _S('muscle', 3, (40, 60), (50, 70), 0.35, 0.20, 'soft'),
    _S('visceral_fat', 4, (-110, -75), None, 0.90, 0.75, 'fat'),
    _S('table', 5, (-350, -150), None, 0.0, 0.0, 'device'),
    _S('lung_left', 6, (-880, -800), None, 0.03, 0.05, 'air'),
    _S('lung_right', 7, (-880, -800), None, 0.03, 0.05, 'air'),
    _S('trachea', 8, (-1000, -960), None, 0.0, 0.0, 'air'),
    _S('bronchus_left', 9, (-1000, -950), None, 0.0, 0.0, 'air'),
    _S('bronchus_right', 10, (-1000, -950), None, 0.0, 0.0, 'air'),
    _S('heart', 11, (30, 55), (140, 260), 0.35, 0.30, 'soft'),
    _S('aorta', 12, (35, 55), (150, 300), 0.10, 0.05, 'soft'),
    _S('inferior_vena_cava', 13, (35, 55), (110, 180), 0.15, 0.10, 'soft'),
    _S('esophagus', 14, (30, 50), (50, 80), 0.35, 0.35, 'soft'),
    _S('liver', 15, (50, 70), (95, 125), 0.60, 0.25, 'soft'),
    _S('gallbladder', 16, (0, 20), None, 0.15, 0.95, 'fluid'),
    _S('spleen', 17, (40, 55), (100, 130), 0.45, 0.55, 'soft'),
    _S('pancreas', 18, (35, 50), (80, 110), 0.65, 0.35, 'soft'),
    _S('stomach', 19, (10, 40), (30, 60), 0.30, 0.60, 'soft'),
    _S('kidney_left', 20, (25, 40), (150, 220), 0.45, 0.60, 'soft'),
    _S('kidney_right', 21, (25, 40), (150, 220), 0.45, 0.60, 'soft'),
    _S('small_bowel', 22, (15, 45), (40, 80), 0.35, 0.50, 'gut'),
    _S('colon', 23, (-30, 30), None, 0.30, 0.40, 'gut'),
    _S('bladder', 24, (0, 15), None, 0.10, 1.00, 'fluid'),
    _S('psoas_left', 25, (40, 60), (50, 70), 0.35, 0.20, 'soft'),
    _S('psoas_right', 26, (40, 60), (50, 70), 0.35, 0.20, 'soft'),
    _S('spinal_canal', 27, (5, 30), None, 0.20, 0.90, 'fluid'),
    _S('intervertebral_disc', 28, (70, 100), None, 0.30, 0.75, 'soft'),
    _S('sternum', 29, (250, 400), None, 0.65, 0.45, 'bone'),
    _S('costal_cartilage', 30, (100, 200), None, 0.30, 0.30, 'soft'),
    _S('ribs_left', 31, (250, 450), None, 0.60, 0.40, 'bone'),
    _S('ribs_right', 32, (250, 450), None, 0.60, 0.40, 'bone'),
    _S('clavicle_left', 33, (300, 500), None, 0.60, 0.40, 'bone'),
    _S('clavicle_right', 34, (300, 500), None, 0.60, 0.40, 'bone'),
    _S('scapula_left', 35, (300, 500), None, 0.60, 0.40, 'bone'),
    _S('scapula_right', 36, (300, 500), None, 0.60, 0.40, 'bone'),
    _S('hip_left', 37, (250, 400), None, 0.70, 0.45, 'bone'),
    _S('hip_right', 38, (250, 400), None, 0.70, 0.45, 'bone'),
    _S('sacrum', 39, (250, 400), None, 0.70, 0.45, 'bone'),
    _S('femur_left', 40, (250, 400), None, 0.70, 0.45, 'bone'),
    _S('femur_right', 41, (250, 400), None, 0.70, 0.45, 'bone'),
    _S('lesion', 42, (5, 45), (40, 80), 0.30, 0.80, 'soft'),
]
_TABLE += [
    _S(f'vertebra_{v}', 50 + i, (180, 300), None, 0.70, 0.45, 'bone')
    for i, v in enumerate(VERTEBRAE)
]

STRUCTURES: Tuple[Structure, ...] = tuple(_TABLE)
STRUCTURE_BY_NAME: Dict[str, Structure] = {s.name: s for s in STRUCTURES}
LABEL_NAMES: Dict[int, str] = {s.label: s.name for s in STRUCTURES}
MAX_LABEL = max(LABEL_NAMES)
assert len(LABEL_NAMES) == len(STRUCTURES), 'duplicate label id in the structure table'

# landmark name -> parent structure (the landmark lies inside it in every subject)
LANDMARK_PARENTS: Dict[str, str] = {
    'lung_apex_left': 'lung_left',
    'lung_apex_right': 'lung_right',
    'carina': 'trachea',
    'aortic_arch_top': 'aorta',
    'aortic_bifurcation': 'aorta',
    'heart_centre': 'heart',
    'liver_centre': 'liver',
    'spleen_centre': 'spleen',
    'stomach_centre': 'stomach',
    'kidney_left_centre': 'kidney_left',
    'kidney_left_upper_pole': 'kidney_left',
    'kidney_left_lower_pole': 'kidney_left',
    'kidney_right_centre': 'kidney_right',
    'kidney_right_upper_pole': 'kidney_right',
    'kidney_right_lower_pole': 'kidney_right',
    'bladder_centre': 'bladder',
    'sternum_centre': 'sternum',
    'sacrum_centre': 'sacrum',
    'femoral_head_left': 'femur_left',
    'femoral_head_right': 'femur_right',
}
LANDMARK_PARENTS.update({f'vertebral_body_{v}': f'vertebra_{v}' for v in VERTEBRAE})
LANDMARK_NAMES = tuple(LANDMARK_PARENTS)


def structure_lut(values: Dict[str, float], default: float = 0.0,
                  dtype=np.float32) -> np.ndarray:
    """A lookup table ``lut[label] -> value`` from a ``{structure name: value}`` dict."""
    lut = np.full(MAX_LABEL + 1, default, dtype=dtype)
    for name, val in values.items():
        lut[STRUCTURE_BY_NAME[name].label] = val
    return lut


def kind_mask_lut(kinds) -> np.ndarray:
    """Boolean lookup table ``lut[label]``: True for structures whose kind is in ``kinds``."""
    lut = np.zeros(MAX_LABEL + 1, dtype=bool)
    for s in STRUCTURES:
        if s.kind in kinds:
            lut[s.label] = True
    return lut
