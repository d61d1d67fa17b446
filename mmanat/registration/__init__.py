"""Registration building blocks: point-set fits (Kabsch, RANSAC, robust affine) and SimpleITK
intensity registration (affine, B-spline), and ANTs affine / SyN (optional ``antspyx``).
All points are world LPS mm ``(x, y, z)``.

This package sits on the layer of :mod:`mmanat.models` and :mod:`mmanat.datasets`: it imports
only :mod:`mmanat.structures`, :mod:`mmanat.fileio` and :mod:`mmanat.utils`. SimpleITK and
scikit-image are imported inside the functions that use them; ANTsPy only through
:func:`~mmanat.registration.ants_registration.import_ants`.
"""
from .ants_registration import (ANTS_INSTALL, ANTS_PRESETS, AntsRegistrationResult,
                                ants_config, ants_unavailable_reason, import_ants, register_ants)
from .point_fits import (apply_affine, fit_affine_robust, fit_landmark_transform,
                         fit_rigid_ransac, fit_rigid_robust, kabsch, thinnest_extent)
from .preprocessing import prepare_for_registration
from .sitk_registration import (PRESETS, RegistrationResult, affine_to_sitk, refine_bspline,
                                register_affine, register_bspline, registration_config,
                                transform_points)

__all__ = [
    # point fits
    'apply_affine', 'kabsch', 'fit_rigid_robust', 'fit_rigid_ransac', 'fit_affine_robust',
    'fit_landmark_transform', 'thinnest_extent',
    # input preparation shared by the SimpleITK and ANTs baselines
    'prepare_for_registration',
    # SimpleITK registration
    'PRESETS', 'RegistrationResult', 'transform_points', 'registration_config',
    'register_affine', 'register_bspline', 'refine_bspline', 'affine_to_sitk',
    # ANTs registration (optional antspyx)
    'ANTS_INSTALL', 'ANTS_PRESETS', 'AntsRegistrationResult', 'ants_config',
    'ants_unavailable_reason', 'import_ants', 'register_ants'
]
