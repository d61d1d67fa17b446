"""Baselines a user would otherwise pick for finding template points in a target image.

* identity: each point maps to itself (world mm) - what remains when nothing is done; a
  sensible floor when both scans share a frame (longitudinal scans of one patient);
* SimpleITK affine registration: Mattes mutual information, multi-resolution, transform
  initialised by aligning the image centres (``CenteredTransformInitializer``);
* SimpleITK affine + B-spline registration: the affine result refined by a cubic B-spline
  free-form deformation (Mattes MI, L-BFGS-B).

The registrations themselves live in :mod:`mmanat.registration.sitk_registration`; this module
wraps them as benchmark methods. The template is the fixed image and the target the moving
image, so the estimated transform maps a template point directly to the predicted target point
(tested in ``tests/test_evaluation/test_baselines.py``).

Every method object is a callable ``method(template, points_mm, target) -> (N, 3) predicted
target points (world LPS mm)`` with a ``name``; :class:`RegistrationResult` also keeps the wall
time of the registration.
"""
from __future__ import annotations

import time
from typing import Optional, Sequence

import numpy as np

from ..registration.sitk_registration import (PRESETS, RegistrationResult,  # noqa: F401
                                              refine_bspline, register_affine,
                                              register_bspline, registration_config,
                                              transform_points)
from ..structures.image import MedicalImage

__all__ = ['IdentityMethod', 'SitkAffineMethod', 'SitkBSplineMethod',
           'SitkBSplineFromIdentityMethod', 'default_baselines',
           # re-exported from mmanat.registration
           'PRESETS', 'RegistrationResult', 'transform_points', 'register_affine',
           'register_bspline', 'refine_bspline']


class IdentityMethod:
    """Baseline: every template point maps to the same world position in the target."""

    name = 'identity'

    def __call__(self, template: MedicalImage, points_mm, target: MedicalImage) -> np.ndarray:
        return np.array(points_mm, dtype=np.float64, copy=True).reshape(-1, template.ndim)


class SitkAffineMethod:
    """Baseline: SimpleITK affine registration (:func:`register_affine`), points mapped by
    the estimated transform. ``last_result`` keeps the latest :class:`RegistrationResult`."""

    name = 'sitk_affine'

    def __init__(self, preset: str = 'default', **overrides):
        registration_config(preset, **overrides)  # fail early on a bad preset or option
        self.preset, self.overrides = preset, overrides
        self.last_result: Optional[RegistrationResult] = None

    def register(self, template, target) -> RegistrationResult:
        return register_affine(template, target, self.preset, **self.overrides)

    def __call__(self, template: MedicalImage, points_mm, target: MedicalImage) -> np.ndarray:
        self.last_result = self.register(template, target)
        return self.last_result.map_points(points_mm)


class SitkBSplineMethod(SitkAffineMethod):
    """Baseline: SimpleITK affine + B-spline registration (:func:`register_bspline`)."""

    name = 'sitk_bspline'

    def register(self, template, target) -> RegistrationResult:
        return register_bspline(template, target, self.preset, **self.overrides)


class SitkBSplineFromIdentityMethod(SitkAffineMethod):
    """Control: the B-spline refinement of :func:`refine_bspline` started from the identity
    (no affine stage). It tells how much of an embedding-initialised registration the
    deformable refinement alone would have achieved."""

    name = 'identity_bspline'

    def register(self, template, target) -> RegistrationResult:
        import SimpleITK as sitk
        t0 = time.perf_counter()
        composite, info = refine_bspline(template, target, sitk.AffineTransform(3),
                                         self.preset, **self.overrides)
        return RegistrationResult(composite, time.perf_counter() - t0, info['metric'],
                                  {'bspline': info['stop'], 'mesh': info['mesh']})


def default_baselines(quick: bool = False, names: Optional[Sequence[str]] = None):
    """The baseline methods (identity, sitk_affine, sitk_bspline).

    Args:
        quick: use the ``'quick'`` registration preset (4 mm, 2 levels) instead of
            ``'default'`` (2 mm, 3 levels).
        names: keep only the methods with these names.

    Returns:
        list of method objects, in the order identity, sitk_affine, sitk_bspline.
    """
    preset = 'quick' if quick else 'default'
    methods = [IdentityMethod(), SitkAffineMethod(preset), SitkBSplineMethod(preset)]
    if names is not None:
        methods = [m for m in methods if m.name in set(names)]
    return methods
