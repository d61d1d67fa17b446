"""Rule-based anatomical landmarks of real chest CTs: the ground truth of the
``real_landmarks`` benchmark (lung1 <-> lung2) and of the demo's error in mm.

* :mod:`.airway` - trachea, carina and main bronchi, slice by slice;
* :mod:`.bones` - sternum, jugular notch and medial clavicle heads;
* :mod:`.detect` - :func:`detect_chest_landmarks` and :data:`LANDMARK_RULES` (how each
  landmark is found);
* :mod:`.samples` - the landmark files of the sample CTs, generated at set-up.
"""
from .detect import LANDMARK_NAMES, LANDMARK_RULES, detect_chest_landmarks
from .samples import (SAMPLE_SCANS, ensure_sample_landmarks, sample_landmarks,
                      sample_landmarks_path)

__all__ = ['LANDMARK_NAMES', 'LANDMARK_RULES', 'detect_chest_landmarks', 'SAMPLE_SCANS',
           'ensure_sample_landmarks', 'sample_landmarks', 'sample_landmarks_path']
