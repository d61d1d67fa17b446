"""Baselines a user would otherwise pick for finding template points in a target image.

* identity: each point maps to itself (world mm) - what remains when nothing is done; a
  sensible floor when both scans share a frame (longitudinal scans of one patient);
* SimpleITK affine registration: Mattes mutual information, multi-resolution, transform
  initialised by aligning the image centres (``CenteredTransformInitializer``);
* SimpleITK affine + B-spline registration: the affine result refined by a cubic B-spline
  free-form deformation (Mattes MI, L-BFGS-B);
* ANTs affine and ANTs SyN (ANTsPy, the optional extra ``antspyx``): the peers users compare
  with. Without antspyx the methods stay in the list with ``unavailable`` set to
  ``"antspyx not installed (pip install -e '.[ants]')"``; the benchmark runners write that
  message in their rows instead of numbers.

The registrations themselves live in :mod:`mmanat.registration.sitk_registration` and
:mod:`mmanat.registration.ants_registration`; this module
wraps them as benchmark methods. The template is the fixed image and the target the moving
image, so the estimated transform maps a template point directly to the predicted target point
(tested in ``tests/test_evaluation/test_baselines.py``).

Every method object is a callable ``method(template, points_mm, target) -> (N, 3) predicted
target points (world LPS mm)`` with a ``name``; :class:`RegistrationResult` also keeps the wall
time of the registration. Identity and the SimpleITK methods also take 2D images (radiographs)
with ``(N, 2)`` points; the ANTs methods are 3D only (``image_ndim = 3``: the benchmark runners
give them a row saying so on 2D cases).
"""
from __future__ import annotations

import time
from typing import Optional, Sequence

import numpy as np

from ..registration.ants_registration import (AntsRegistrationResult, ants_config,
                                              ants_unavailable_reason, register_ants)
from ..registration.sitk_registration import (PRESETS, RegistrationResult,  # noqa: F401
                                              refine_bspline, register_affine,
                                              register_bspline, registration_config,
                                              transform_points)
from ..structures.image import MedicalImage

__all__ = ['IdentityMethod', 'SitkAffineMethod', 'SitkBSplineMethod',
           'SitkBSplineFromIdentityMethod', 'AntsAffineMethod', 'AntsSyNMethod',
           'BASELINE_NAMES', 'default_baselines',
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
        composite, info = refine_bspline(template, target,
                                         sitk.AffineTransform(template.ndim),
                                         self.preset, **self.overrides)
        return RegistrationResult(composite, time.perf_counter() - t0, info['metric'],
                                  {'bspline': info['stop'], 'mesh': info['mesh']})


class AntsAffineMethod:
    """Baseline: ANTs affine registration (ANTsPy ``type_of_transform='Affine'``, Mattes MI,
    centre-of-mass initialisation; :func:`~mmanat.registration.register_ants`), points mapped
    by the estimated transform. ``last_result`` keeps the latest
    :class:`~mmanat.registration.AntsRegistrationResult`.

    ``unavailable`` is ``None`` when antspyx can be imported, else the message the benchmark
    rows show (``"antspyx not installed (pip install -e '.[ants]')"``); calling the method then
    raises :class:`~mmanat.utils.exceptions.MissingDependencyError`.
    """

    name = 'ants_affine'
    transform = 'Affine'
    #: volumes only (the point mapping of :class:`AntsRegistrationResult` is 3D)
    image_ndim = 3

    def __init__(self, preset: str = 'default', **overrides):
        ants_config(preset, **overrides)  # fail early on a bad preset or option
        self.preset, self.overrides = preset, overrides
        self.last_result: Optional[AntsRegistrationResult] = None

    @property
    def unavailable(self) -> Optional[str]:
        return ants_unavailable_reason()

    def register(self, template, target) -> AntsRegistrationResult:
        return register_ants(template, target, self.transform, self.preset, **self.overrides)

    def __call__(self, template: MedicalImage, points_mm, target: MedicalImage) -> np.ndarray:
        if self.last_result is not None:  # the previous transform files are not needed
            self.last_result.close()
        self.last_result = self.register(template, target)
        return self.last_result.map_points(points_mm)


class AntsSyNMethod(AntsAffineMethod):
    """Baseline: ANTs SyN (ANTsPy ``type_of_transform='SyN'``: affine, then symmetric
    diffeomorphic normalisation, Mattes MI)."""

    name = 'ants_syn'
    transform = 'SyN'


#: names of :func:`default_baselines`, in table order
BASELINE_NAMES = ('identity', 'sitk_affine', 'sitk_bspline', 'ants_affine', 'ants_syn')


def default_baselines(quick: bool = False, names: Optional[Sequence[str]] = None):
    """The baseline methods (identity, sitk_affine, sitk_bspline, ants_affine, ants_syn).

    The ANTs methods are listed even without antspyx: their ``unavailable`` message then
    stands in their benchmark rows.

    Args:
        quick: use the ``'quick'`` registration presets (SimpleITK: 4 mm, 2 levels; ANTs:
            4 mm, 3 affine levels) instead of ``'default'`` (2 mm).
        names: keep only the methods with these names.

    Returns:
        list of method objects, in the order of :data:`BASELINE_NAMES`.

    Raises:
        InvalidInputError: an unknown name in ``names``.
    """
    from ..utils.exceptions import InvalidInputError
    preset = 'quick' if quick else 'default'
    if names is not None:
        unknown = sorted(set(names) - set(BASELINE_NAMES))
        if unknown:
            raise InvalidInputError(f'unknown baselines {unknown}; known: '
                                    f'{list(BASELINE_NAMES)}.')
    methods = [IdentityMethod(), SitkAffineMethod(preset), SitkBSplineMethod(preset),
               AntsAffineMethod(preset), AntsSyNMethod(preset)]
    if names is not None:
        methods = [m for m in methods if m.name in set(names)]
    return methods
