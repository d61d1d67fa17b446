"""SimpleITK intensity registration: affine, affine + cubic B-spline, and the B-spline
refinement of a given affine (Mattes mutual information, multi-resolution).

* :func:`register_affine`: affine, initialised by aligning the image centres
  (``CenteredTransformInitializer``), regular-step gradient descent;
* :func:`register_bspline`: that affine refined by a cubic B-spline free-form deformation
  (L-BFGS-B);
* :func:`refine_bspline`: the B-spline stage on top of an affine from elsewhere (e.g. the
  landmark fit of the embedding-driven registration).

Direction of the transforms: ITK registration estimates ``T`` mapping points of the *fixed*
image's space into the *moving* image's space. ``template`` is the fixed image and ``target``
the moving one, so ``T.TransformPoint(template_point_mm)`` is directly the corresponding
target point (world LPS mm, ``(x, y, z)``).

Every function works on 2D images (radiographs) as well: template and target must then both
be 2D, the transforms are 2D (``AffineTransform(2)``, a 2D B-spline) and points are ``(N, 2)``
world mm.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Dict, Optional

import numpy as np

from ..structures.image import MedicalImage
from ..utils.exceptions import InvalidInputError
from .preprocessing import prepare_for_registration

__all__ = ['PRESETS', 'RegistrationResult', 'transform_points', 'registration_config',
           'register_affine', 'register_bspline', 'refine_bspline', 'affine_to_sitk']

#: presets of the SimpleITK registrations; ``quick`` keeps a case at 4 mm to a few seconds
PRESETS = {
    'default': dict(spacing=2.0, shrink_factors=(4, 2, 1), smoothing_sigmas=(2.0, 1.0, 0.0),
                    sampling_percentage=0.05, affine_iterations=200, bspline_iterations=50,
                    bspline_sampling_percentage=0.01, bspline_grid_mm=50.0,
                    histogram_bins=50),
    'quick': dict(spacing=4.0, shrink_factors=(2, 1), smoothing_sigmas=(1.0, 0.0),
                  sampling_percentage=0.1, affine_iterations=100, bspline_iterations=20,
                  bspline_sampling_percentage=0.02, bspline_grid_mm=60.0, histogram_bins=32),
}


# options beside the preset keys: sampling seed (default 1; 0 = wall clock, not repeatable),
# initialiser ('geometry' | 'moments'), threads (0: SimpleITK's default; 1 makes a
# registration repeatable, because multi-threaded metric sums are reduced in varying order)
# and min_samples
_EXTRA_OPTIONS = ('seed', 'init', 'threads', 'min_samples')
#: fewest metric samples drawn per registration stage (``min_samples`` overrides it): the
#: preset fractions are meant for volumes (1 % of a 2 mm chest CT is ~20,000 voxels) and
#: leave a 2D radiograph at 4 mm with under 200 samples
MIN_SAMPLES = 2000


@dataclass
class RegistrationResult:
    """A registration of ``template`` (fixed) to ``target`` (moving).

    Attributes:
        transform: ``SimpleITK.Transform`` mapping template world points (LPS mm) to target
            world points.
        seconds: wall time of the registration (pre-processing included).
        metric_value: final Mattes MI value (lower is better).
        info: optimiser stop conditions per stage.
    """

    transform: object
    seconds: float
    metric_value: float = float('nan')
    info: Dict = field(default_factory=dict)

    def map_points(self, points_mm) -> np.ndarray:
        """Map ``(N, 3)`` (2D images: ``(N, 2)``) template points (world mm) to the target
        (world mm)."""
        return transform_points(self.transform, points_mm)


def transform_points(transform, points_mm) -> np.ndarray:
    """Apply a ``SimpleITK.Transform`` to ``(N, D)`` world points.

    Affine-family transforms are applied in one matrix product; any other transform (B-spline,
    composite) point by point, because SimpleITK exposes no batched ``TransformPoint`` (a
    microsecond per point in C++; query sets are tens to thousands of points).

    Args:
        transform: a ``SimpleITK.Transform``.
        points_mm: ``(N, D)`` (or one ``(D,)``) world points, LPS mm.

    Returns:
        ``(N, D)`` float64 array of the mapped points.
    """
    import SimpleITK as sitk
    pts = np.asarray(points_mm, dtype=np.float64)
    if pts.ndim == 1:
        pts = pts[None]
    if pts.size == 0:
        return pts.copy()
    if isinstance(transform, sitk.Transform) and transform.GetName() == 'AffineTransform':
        aff = sitk.AffineTransform(transform)
        d = pts.shape[1]
        mat = np.asarray(aff.GetMatrix()).reshape(d, d)
        centre = np.asarray(aff.GetCenter())
        return (pts - centre) @ mat.T + centre + np.asarray(aff.GetTranslation())
    return np.array([transform.TransformPoint(tuple(float(v) for v in p)) for p in pts])


def _prepare(image: MedicalImage, spacing: Optional[float]):
    """:func:`prepare_for_registration`, as a SimpleITK image."""
    return prepare_for_registration(image, spacing, engine='SimpleITK').to_sitk()


def _prepare_pair(template: MedicalImage, target: MedicalImage, spacing: Optional[float]):
    """Both images prepared (:func:`_prepare`); they must have the same dimension."""
    if template.ndim != target.ndim:
        raise InvalidInputError(
            f'cannot register a {target.ndim}D target ({target.path or "<in-memory image>"}) '
            f'to a {template.ndim}D template ({template.path or "<in-memory image>"}); give '
            'two volumes or two 2D images.')
    return _prepare(template, spacing), _prepare(target, spacing)


def _sampling_fraction(fixed, fraction: float, min_samples: int) -> float:
    """``fraction`` of the fixed image's pixels, raised so that at least ``min_samples`` are
    drawn (small images, e.g. 2D radiographs at 2 mm: 1 % of 180 x 180 pixels is too few for
    Mattes MI, and the B-spline drifts)."""
    n = float(np.prod(fixed.GetSize()))
    return float(min(1.0, max(float(fraction), float(min_samples) / n)))


def _method(cfg, sampling_percentage, fixed=None):
    import SimpleITK as sitk
    reg = sitk.ImageRegistrationMethod()
    reg.SetMetricAsMattesMutualInformation(numberOfHistogramBins=int(cfg['histogram_bins']))
    reg.SetMetricSamplingStrategy(reg.RANDOM)
    if fixed is not None:
        sampling_percentage = _sampling_fraction(fixed, sampling_percentage,
                                                 int(cfg.get('min_samples', MIN_SAMPLES)))
    # SimpleITK reads seed 0 as "seed from the wall clock": default to a fixed seed
    reg.SetMetricSamplingPercentage(float(sampling_percentage), int(cfg.get('seed', 1)))
    if int(cfg.get('threads', 0)) > 0:
        reg.SetNumberOfThreads(int(cfg['threads']))
    reg.SetInterpolator(sitk.sitkLinear)
    reg.SetShrinkFactorsPerLevel([int(v) for v in cfg['shrink_factors']])
    reg.SetSmoothingSigmasPerLevel([float(v) for v in cfg['smoothing_sigmas']])
    reg.SmoothingSigmasAreSpecifiedInPhysicalUnitsOff()
    return reg


def registration_config(preset: str = 'default', **overrides) -> Dict:
    """The options of a SimpleITK registration: a preset updated by ``overrides``.

    Args:
        preset: a key of :data:`PRESETS` (``'default'``: 2 mm, 3 levels; ``'quick'``: 4 mm,
            2 levels).
        **overrides: any key of the preset, ``seed`` (metric sampling; 0 = wall clock),
            ``init`` (``'geometry'`` or ``'moments'``) or ``threads`` (1: repeatable); ``None``
            values keep the preset's.

    Returns:
        the option dict.

    Raises:
        InvalidInputError: for an unknown preset or option, or per-level lists of different
            lengths.
    """
    if preset not in PRESETS:
        raise InvalidInputError(f'unknown registration preset {preset!r}; use one of '
                                f'{sorted(PRESETS)}.')
    cfg = dict(PRESETS[preset])
    unknown = set(overrides) - set(cfg) - set(_EXTRA_OPTIONS)
    if unknown:
        raise InvalidInputError(f'unknown registration options {sorted(unknown)}; known: '
                                f'{sorted(cfg) + list(_EXTRA_OPTIONS)}.')
    cfg.update({k: v for k, v in overrides.items() if v is not None})
    if len(cfg['shrink_factors']) != len(cfg['smoothing_sigmas']):
        raise InvalidInputError('shrink_factors and smoothing_sigmas need the same length.')
    return cfg


def _affine_stage(fixed, moving, cfg):
    import SimpleITK as sitk
    init_mode = {'geometry': sitk.CenteredTransformInitializerFilter.GEOMETRY,
                 'moments': sitk.CenteredTransformInitializerFilter.MOMENTS}
    mode = cfg.get('init', 'geometry')
    if mode not in init_mode:
        raise InvalidInputError(f'init must be "geometry" or "moments", got {mode!r}.')
    initial = sitk.CenteredTransformInitializer(fixed, moving,
                                                sitk.AffineTransform(fixed.GetDimension()),
                                                init_mode[mode])
    reg = _method(cfg, cfg['sampling_percentage'], fixed)
    reg.SetOptimizerAsRegularStepGradientDescent(
        learningRate=1.0, minStep=1e-3, numberOfIterations=int(cfg['affine_iterations']),
        relaxationFactor=0.5, gradientMagnitudeTolerance=1e-6)
    reg.SetOptimizerScalesFromPhysicalShift()
    reg.SetInitialTransform(initial, inPlace=False)
    out = reg.Execute(fixed, moving)
    return sitk.AffineTransform(out.GetNthTransform(0) if out.GetName() == 'CompositeTransform'
                                else out), reg


def register_affine(template: MedicalImage, target: MedicalImage, preset: str = 'default',
                    **overrides) -> RegistrationResult:
    """Affine registration (Mattes MI, multi-resolution, centred initialisation).

    Args:
        template: the image whose points are to be found (fixed image; 3D or 2D).
        target: the image to find them in (moving image; same dimension).
        preset: ``'default'`` (2 mm, 3 levels) or ``'quick'`` (4 mm, 2 levels).
        **overrides: any key of :data:`PRESETS` (``spacing``, ``shrink_factors``,
            ``smoothing_sigmas``, ``sampling_percentage``, ``affine_iterations``, ...),
            ``seed`` (sampling), ``init`` (``'geometry'`` or ``'moments'``) and ``threads``
            (1: repeatable to ~1e-12 mm; default: all cores, which can differ slightly from
            run to run).

    Returns:
        :class:`RegistrationResult` whose transform maps template -> target world points.
    """
    cfg = registration_config(preset, **overrides)
    t0 = time.perf_counter()
    fixed, moving = _prepare_pair(template, target, cfg['spacing'])
    affine, reg = _affine_stage(fixed, moving, cfg)
    return RegistrationResult(affine, time.perf_counter() - t0, reg.GetMetricValue(),
                              {'affine': reg.GetOptimizerStopConditionDescription()})


def register_bspline(template: MedicalImage, target: MedicalImage, preset: str = 'default',
                     **overrides) -> RegistrationResult:
    """Affine registration (:func:`register_affine`) refined by a cubic B-spline deformation
    (control-point spacing ``bspline_grid_mm``; Mattes MI; L-BFGS-B).

    The returned transform is the composite ``affine(bspline(x))``: the B-spline acts in the
    template (fixed) space, the affine then carries the point into the target.

    Args:
        template: the fixed image (3D or 2D).
        target: the moving image (same dimension).
        preset, **overrides: see :func:`registration_config`.

    Returns:
        :class:`RegistrationResult` whose transform maps template -> target world points.
    """
    cfg = registration_config(preset, **overrides)
    t0 = time.perf_counter()
    fixed, moving = _prepare_pair(template, target, cfg['spacing'])
    affine, reg_a = _affine_stage(fixed, moving, cfg)
    composite, reg, mesh = _bspline_stage(fixed, moving, affine, cfg)
    return RegistrationResult(composite, time.perf_counter() - t0, reg.GetMetricValue(),
                              {'affine': reg_a.GetOptimizerStopConditionDescription(),
                               'bspline': reg.GetOptimizerStopConditionDescription(),
                               'mesh': mesh})


def _bspline_stage(fixed, moving, affine, cfg):
    """Cubic B-spline (Mattes MI, L-BFGS-B) on prepared SimpleITK images, started from
    ``affine``; returns ``(composite affine(bspline(x)), registration method, mesh)``."""
    import SimpleITK as sitk
    extent = np.asarray(fixed.GetSize()) * np.asarray(fixed.GetSpacing())
    mesh = [max(1, int(round(e / float(cfg['bspline_grid_mm'])))) for e in extent]
    bspline = sitk.BSplineTransformInitializer(fixed, mesh, order=3)
    reg = _method(cfg, cfg['bspline_sampling_percentage'], fixed)
    its = int(cfg['bspline_iterations'])
    reg.SetOptimizerAsLBFGSB(gradientConvergenceTolerance=1e-5, numberOfIterations=its,
                             maximumNumberOfCorrections=5,
                             maximumNumberOfFunctionEvaluations=4 * its,
                             costFunctionConvergenceFactor=1e7)
    reg.SetMovingInitialTransform(affine)
    reg.SetInitialTransform(bspline, inPlace=True)
    reg.Execute(fixed, moving)
    # CompositeTransform applies its transforms last-added first: affine(bspline(x))
    composite = sitk.CompositeTransform([sitk.AffineTransform(affine), bspline])
    return composite, reg, mesh


def refine_bspline(template: MedicalImage, target: MedicalImage, initial_affine,
                   preset: str = 'default', **overrides):
    """B-spline refinement of a given affine ``initial_affine`` (a ``SimpleITK.AffineTransform``
    mapping template points to the target), with the set-up of :func:`register_bspline`.

    Args:
        template: the fixed image (3D or 2D).
        target: the moving image (same dimension).
        initial_affine: ``SimpleITK.AffineTransform`` (of that dimension) template -> target
            world points.
        preset, **overrides: see :func:`registration_config`.

    Returns:
        ``(composite transform affine(bspline(x)), info dict)``.
    """
    cfg = registration_config(preset, **overrides)
    fixed, moving = _prepare_pair(template, target, cfg['spacing'])
    composite, reg, mesh = _bspline_stage(fixed, moving, initial_affine, cfg)
    return composite, dict(metric=float(reg.GetMetricValue()), mesh=mesh,
                           stop=reg.GetOptimizerStopConditionDescription())


def affine_to_sitk(matrix: np.ndarray, translation: np.ndarray):
    """A ``SimpleITK.AffineTransform`` (centre at the origin) for ``p -> matrix @ p + t``.

    Args:
        matrix: ``(3, 3)`` linear part (``(2, 2)`` for 2D images).
        translation: ``(3,)`` (``(2,)``) translation (mm).

    Returns:
        ``SimpleITK.AffineTransform`` of the matrix's dimension.
    """
    import SimpleITK as sitk
    aff = sitk.AffineTransform(int(np.asarray(matrix).shape[0]))
    aff.SetMatrix([float(v) for v in np.asarray(matrix).reshape(-1)])
    aff.SetTranslation([float(v) for v in translation])
    return aff
