"""Synthetic torso phantoms: label maps with named landmarks, rendered as CT, MR and X-ray."""
from .anatomy import (LABEL_NAMES, LANDMARK_NAMES, LANDMARK_PARENTS, STRUCTURE_BY_NAME,
                      STRUCTURES, VERTEBRAE, Structure)
from .phantom import PhantomModel, SyntheticSubject
from .renderers import (MR_PRESETS, MU_WATER_PER_MM, landmarks_inside, render_ct, render_mr,
                        render_xray)
from .subject import DEFAULT_FOV_MM, generate_subject

__all__ = [
    'Structure', 'STRUCTURES', 'STRUCTURE_BY_NAME', 'LABEL_NAMES', 'LANDMARK_NAMES',
    'LANDMARK_PARENTS', 'VERTEBRAE', 'SyntheticSubject', 'PhantomModel', 'generate_subject',
    'DEFAULT_FOV_MM', 'render_ct', 'render_mr', 'render_xray', 'MR_PRESETS', 'MU_WATER_PER_MM',
    'landmarks_inside'
]
