"""Benchmark case generators with exact ground truth.

1. :func:`deformation_cases` - a real volume (the template) warped by a known random affine +
   smooth deformation, with intensity changes and a field-of-view cut (the target); points
   sampled inside the body of the template; their exact positions in the target
   (:mod:`.deformation_cases`, on :mod:`.deformation` and :mod:`.sampling`).
2. :func:`cross_subject_cases` - pairs of synthetic subjects (CT->CT, MR->MR, CT->MR); the
   named landmarks of the generator are the ground truth (:mod:`.cross_subject`).
3. :func:`longitudinal_lesion_cases` - a synthetic subject and its follow-up (lesions grown or
   shrunk, the follow-up deformed like in 1.), written in the DLT ``test.json`` layout
   (:mod:`.lesions`).
4. :func:`ct_mr_registration_cases` - the CT and the moved MR of one synthetic subject
   (:mod:`.ct_mr`).
5. :func:`real_landmark_cases` - the two real sample CTs in both directions; the rule-based
   landmarks of :mod:`mmanat.evaluation.landmarks` are the ground truth (:mod:`.real_landmarks`).
6. :func:`xray_cross_subject_cases` and :func:`xray_deformation_cases` - chest radiographs
   (2D): landmarks of one synthetic radiograph found in others, and a real radiograph against
   known random 2D deformations of itself (:mod:`.xray`; 1. works in 2D too).
"""
from .cross_subject import cross_subject_cases
from .ct_mr import ct_mr_registration_cases
from .deformation import RandomDeformation, random_deformation, random_target_grid, warp_image
from .deformation_cases import deform_case, deformation_cases, random_intensity_change
from .landmark_case import LandmarkCase
from .lesions import LesionCase, lesion_box_voxels, longitudinal_lesion_cases
from .real_landmarks import real_landmark_cases
from .sampling import sample_body_points
from .xray import (XRAY_Z_RANGE, radiograph_body_mask, synthetic_radiograph,
                   xray_cross_subject_cases, xray_deformation_cases)

__all__ = [
    'LandmarkCase', 'LesionCase', 'RandomDeformation', 'random_deformation',
    'random_target_grid', 'warp_image', 'random_intensity_change', 'sample_body_points',
    'deform_case', 'deformation_cases', 'cross_subject_cases', 'lesion_box_voxels',
    'longitudinal_lesion_cases', 'ct_mr_registration_cases', 'real_landmark_cases',
    'XRAY_Z_RANGE', 'synthetic_radiograph', 'xray_cross_subject_cases', 'radiograph_body_mask',
    'xray_deformation_cases'
]
