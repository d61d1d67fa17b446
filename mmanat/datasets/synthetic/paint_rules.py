"""Label ids and the paint rules of the phantom: which labels a structure may overwrite.

A painting item is ``(label, shape, allow)``; ``allow`` is a boolean lookup table over the
label ids (``allow[current label]``): the shape is painted only where the label already on
the canvas is allowed. Items are painted in the order :class:`~.phantom.PhantomModel` adds
them, so later items win where they are allowed to.
"""
from __future__ import annotations

import numpy as np

from .anatomy import MAX_LABEL, STRUCTURE_BY_NAME, VERTEBRAE

__all__ = [
    'label_id', 'allow_only', 'allow_all_but', 'BONES', 'AIRWAY', 'SOFT_BODY', 'NOT_OUTSIDE',
    'NOT_BONE'
]


def label_id(name: str) -> int:
    """The label id of the structure ``name`` (see :data:`~.anatomy.STRUCTURES`)."""
    return STRUCTURE_BY_NAME[name].label


def allow_only(*names) -> np.ndarray:
    """A ``(MAX_LABEL + 1,)`` boolean table, True only for the structures ``names``."""
    lut = np.zeros(MAX_LABEL + 1, dtype=bool)
    for n in names:
        lut[label_id(n)] = True
    return lut


def allow_all_but(*names) -> np.ndarray:
    """A ``(MAX_LABEL + 1,)`` boolean table, True for every structure except ``names``."""
    lut = np.ones(MAX_LABEL + 1, dtype=bool)
    for n in names:
        lut[label_id(n)] = False
    return lut


BONES = ('sternum', 'ribs_left', 'ribs_right', 'clavicle_left', 'clavicle_right',
         'scapula_left', 'scapula_right', 'hip_left', 'hip_right', 'sacrum', 'femur_left',
         'femur_right', 'intervertebral_disc') + tuple(f'vertebra_{v}' for v in VERTEBRAE)
AIRWAY = ('trachea', 'bronchus_left', 'bronchus_right')
#: the body wall and the fat of the body cavity
SOFT_BODY = allow_only('skin', 'subcutaneous_fat', 'muscle', 'visceral_fat')
#: anything inside the body
NOT_OUTSIDE = allow_all_but('background', 'table')
#: inside the body, but neither bone nor airway
NOT_BONE = allow_all_but('background', 'table', *BONES, *AIRWAY)
