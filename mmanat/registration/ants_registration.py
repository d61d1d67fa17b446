"""ANTs intensity registration (ANTsPy, PyPI ``antspyx``): affine and SyN.

ANTs is the registration peer users compare with; it is an optional extra of the set-up
(``pip install -e '.[ants]'``), imported only inside :func:`import_ants`. Without it,
:func:`register_ants` raises :class:`~mmanat.utils.exceptions.MissingDependencyError` naming
the install command, and :func:`ants_unavailable_reason` says so without importing anything.

Geometry: an ANTs image carries origin, spacing and direction in ITK's LPS physical space,
like :class:`~mmanat.structures.MedicalImage`, but its array is indexed ``(x, y, z)`` (ITK
index order) where mmanat's is ``(z, y, x)``: the conversion transposes the array and copies
the geometry unchanged (:func:`to_ants`).

Direction of the transforms: ``template`` is the fixed image and ``target`` the moving one.
``ants.registration`` returns ``fwdtransforms``, the transform list that warps the *moving
image* into the fixed space; an image warp pulls values, so that list maps fixed physical
points to moving physical points. Point transforms run the opposite way to image transforms,
so the same ``fwdtransforms`` (none inverted), given to ``ants.apply_transforms_to_points``,
carries template points (world LPS mm) to their target positions
(:meth:`AntsRegistrationResult.map_points`; tested with known translations and affines in
``tests/test_registration/test_ants_registration.py``).

Reproducibility: the metric sampling uses ``seed`` (default 1). ANTs reads its thread count
(``ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS``) once, at its first image operation in the process:
``threads=1`` makes runs repeatable (bit for bit) when it is given at the first ANTs use
(:func:`ants_session`), or when the variable is set before Python starts; otherwise a warning
says which count is in force. With several threads, results vary from run to run (the
metric's sums are reduced in varying order, and the optimiser may stop at another step).
"""
from __future__ import annotations

import importlib.util
import inspect
import os
import sys
import tempfile
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Dict, List, Optional

import numpy as np

from ..structures.image import MedicalImage
from ..utils.exceptions import InvalidInputError, MissingDependencyError
from .preprocessing import prepare_for_registration

__all__ = ['ANTS_INSTALL', 'ANTS_PRESETS', 'ANTS_TRANSFORMS', 'AntsRegistrationResult',
           'ants_unavailable_reason', 'import_ants', 'ants_session', 'ants_config', 'to_ants',
           'register_ants']

#: the install command of the optional extra, quoted in every "not installed" message
ANTS_INSTALL = "pip install -e '.[ants]'"

#: transform types of :func:`register_ants` (ANTsPy ``type_of_transform`` names)
ANTS_TRANSFORMS = ('Rigid', 'Similarity', 'Affine', 'SyN')

#: presets; ``default`` is ANTsPy's own defaults at 2 mm (what a user running
#: ``ants.registration`` gets), ``quick`` 4 mm with three affine levels. ANTsPy's ``SyN``
#: runs its own fixed affine stage (2100x1200x1200x0) before the SyN stage, whatever
#: ``aff_iterations`` says.
ANTS_PRESETS = {
    'default': dict(spacing=2.0, aff_iterations=(2100, 1200, 1200, 10),
                    aff_shrink_factors=(6, 4, 2, 1), aff_smoothing_sigmas=(3, 2, 1, 0),
                    reg_iterations=(40, 20, 0), aff_metric='mattes', syn_metric='mattes',
                    aff_sampling=32, syn_sampling=32, aff_random_sampling_rate=0.2,
                    grad_step=0.2, flow_sigma=3.0, total_sigma=0.0),
    'quick': dict(spacing=4.0, aff_iterations=(1000, 500, 100),
                  aff_shrink_factors=(4, 2, 1), aff_smoothing_sigmas=(2, 1, 0),
                  reg_iterations=(40, 20, 0), aff_metric='mattes', syn_metric='mattes',
                  aff_sampling=32, syn_sampling=32, aff_random_sampling_rate=0.2,
                  grad_step=0.2, flow_sigma=3.0, total_sigma=0.0),
}

# the ITK thread count of ANTs in this process, fixed at its first use through
# :func:`ants_session` ('' = its default, all cores; None = not used yet)
_THREADS_IN_FORCE: Optional[str] = None


def ants_unavailable_reason() -> Optional[str]:
    """``None`` when ANTsPy can be imported, else the message of a benchmark row / error:
    ``"antspyx not installed (pip install -e '.[ants]')"``. Imports nothing."""
    if 'ants' in sys.modules and sys.modules['ants'] is not None:
        return None
    try:
        found = importlib.util.find_spec('ants') is not None
    except (ImportError, ValueError):
        found = False
    return None if found else f'antspyx not installed ({ANTS_INSTALL})'


def import_ants():
    """Import ANTsPy (``import ants``).

    Returns:
        the ``ants`` module.

    Raises:
        MissingDependencyError: antspyx is not installed (the message names
            ``pip install -e '.[ants]'``).
    """
    try:
        import ants
    except ImportError as err:
        raise MissingDependencyError(
            f'ANTs registration needs ANTsPy: antspyx not installed ({ANTS_INSTALL}, or '
            f'`pip install antspyx`); import failed with: {err}') from err
    return ants


@contextmanager
def ants_session(threads: int = 0):
    """Context giving the ``ants`` module, with ``threads`` ITK threads if this is the first
    use of ANTs in the process.

    ANTs' ITK reads ``ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS`` once, at its first image
    operation, and keeps that count for the life of the process. The variable is set only
    inside this context (the rest of the process, SimpleITK included, is not touched); a later
    call asking for another count gets a ``RuntimeWarning`` naming the count in force.

    Args:
        threads: ITK threads (0: ANTs' default, all cores; 1: repeatable registrations).

    Raises:
        MissingDependencyError: antspyx is not installed.
    """
    global _THREADS_IN_FORCE
    threads = int(threads)
    var = 'ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS'
    old = os.environ.get(var)
    first = _THREADS_IN_FORCE is None
    if first and threads > 0:
        os.environ[var] = str(threads)
    try:
        ants = import_ants()
        if first:
            _THREADS_IN_FORCE = os.environ.get(var, '')
        elif threads > 0 and _THREADS_IN_FORCE != str(threads):
            warnings.warn(f'ANTs already runs with {_THREADS_IN_FORCE or "its default number of"}'
                          f' threads in this process; threads={threads} takes effect only at '
                          f'the first ANTs use (or set {var}={threads} before starting Python).',
                          RuntimeWarning, stacklevel=3)
        yield ants
    finally:
        if first and threads > 0:
            if old is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = old


def ants_config(preset: str = 'default', **overrides) -> Dict:
    """The options of an ANTs registration: a preset of :data:`ANTS_PRESETS` updated by
    ``overrides`` (any preset key, ``seed``, ``threads``; ``None`` keeps the preset's value).

    Raises:
        InvalidInputError: unknown preset or option, or per-level lists of different lengths.
    """
    if preset not in ANTS_PRESETS:
        raise InvalidInputError(f'unknown ANTs registration preset {preset!r}; use one of '
                                f'{sorted(ANTS_PRESETS)}.')
    cfg = dict(ANTS_PRESETS[preset], seed=1, threads=0)
    unknown = set(overrides) - set(cfg)
    if unknown:
        raise InvalidInputError(f'unknown ANTs registration options {sorted(unknown)}; known: '
                                f'{sorted(cfg)}.')
    cfg.update({k: v for k, v in overrides.items() if v is not None})
    levels = {len(cfg[k]) for k in ('aff_iterations', 'aff_shrink_factors',
                                    'aff_smoothing_sigmas')}
    if len(levels) != 1:
        raise InvalidInputError('aff_iterations, aff_shrink_factors and aff_smoothing_sigmas '
                                'need the same length.')
    return cfg


def to_ants(image: MedicalImage, ants=None):
    """A float32 ``ants.ANTsImage`` with ``image``'s geometry: the array transposed from
    mmanat's ``(z, y, x)`` to ANTs' ``(x, y, z)``, origin / spacing / direction copied (both
    are ITK LPS)."""
    if ants is None:
        with ants_session() as ants:
            return to_ants(image, ants)
    arr = np.ascontiguousarray(np.asarray(image.array, dtype=np.float32).T)
    return ants.from_numpy(arr, origin=tuple(float(v) for v in image.origin),
                           spacing=tuple(float(v) for v in image.spacing),
                           direction=np.asarray(image.direction, dtype=np.float64))


@dataclass
class AntsRegistrationResult:
    """An ANTs registration of ``template`` (fixed) to ``target`` (moving).

    Attributes:
        transform_type: ``'Affine'``, ``'SyN'``, ...
        fwdtransforms: ANTs transform files (template -> target points, in the order
            ``ants.apply_transforms_to_points`` takes them).
        invtransforms: the inverse list (target -> template points; affine files inverted).
        seconds: wall time of the registration (pre-processing included).
        info: the options used.
        workdir: temporary folder of the transform files; removed by :meth:`close` (or when
            the result is garbage-collected).
    """

    transform_type: str
    fwdtransforms: List[str]
    invtransforms: List[str]
    seconds: float
    info: Dict = field(default_factory=dict)
    workdir: Optional[object] = field(default=None, repr=False)

    def map_points(self, points_mm) -> np.ndarray:
        """Map ``(N, 3)`` template points (world LPS mm) to the target (world LPS mm)."""
        return self._apply(points_mm, self.fwdtransforms, [False] * len(self.fwdtransforms))

    def map_points_inverse(self, points_mm) -> np.ndarray:
        """Map ``(N, 3)`` target points (world LPS mm) back to the template."""
        inv = ['.mat' in f for f in self.invtransforms]
        return self._apply(points_mm, self.invtransforms, inv)

    def _apply(self, points_mm, transforms, invert) -> np.ndarray:
        pts = np.asarray(points_mm, dtype=np.float64)
        if pts.ndim == 1:
            pts = pts[None]
        if pts.shape[-1] != 3:
            raise InvalidInputError(f'points must be (N, 3) world mm, got shape {pts.shape}.')
        if pts.size == 0:
            return pts.copy()
        if self.workdir is None or not all(os.path.exists(f) for f in transforms):
            raise InvalidInputError('the transform files of this ANTs registration are gone '
                                    '(close() was called); register again.')
        import pandas as pd
        ants = import_ants()  # used before, by the registration: the thread count is set
        n = len(pts)
        # ANTs reads a one-row point set as 1D (and refuses it): pad to two rows
        frame = pd.DataFrame(pts if n > 1 else np.repeat(pts, 2, 0), columns=['x', 'y', 'z'])
        out = ants.apply_transforms_to_points(3, frame, list(transforms), whichtoinvert=invert)
        return out[['x', 'y', 'z']].to_numpy(dtype=np.float64)[:n]

    def close(self):
        """Remove the transform files."""
        if self.workdir is not None:
            self.workdir.cleanup()
            self.workdir = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


@contextmanager
def _ants_seed(ants, seed: int):
    """Give ``ants.registration`` the metric-sampling seed, whichever ANTsPy this is.

    ANTsPy up to 0.5 takes ``random_seed=`` as an argument; 0.6 ignores that argument and
    reads ``ants.config._random_seed`` instead. Its public setter
    (``ants.config.set_ants_deterministic``) also reseeds numpy and Python globally and
    changes the thread variable, so the attribute is set for this call only and restored.
    """
    config = getattr(ants, 'config', None)
    if 'random_seed' in inspect.signature(ants.registration).parameters or \
            not hasattr(config, '_random_seed'):
        yield dict(random_seed=seed)
        return
    previous = config._random_seed
    config._random_seed = seed
    try:
        yield {}
    finally:
        config._random_seed = previous


def register_ants(template: MedicalImage, target: MedicalImage, transform: str = 'Affine',
                  preset: str = 'default', **overrides) -> AntsRegistrationResult:
    """ANTs registration of ``template`` (fixed) to ``target`` (moving), Mattes MI.

    Args:
        template: the image whose points are to be found (fixed image, 3D).
        target: the image to find them in (moving image, 3D).
        transform: ``'Affine'`` (centre-of-mass initialisation, then affine) or ``'SyN'``
            (that affine, then symmetric diffeomorphic normalisation); also ``'Rigid'``,
            ``'Similarity'``.
        preset: ``'default'`` (ANTsPy's defaults at 2 mm) or ``'quick'`` (4 mm, 3 levels).
        **overrides: any key of :data:`ANTS_PRESETS` (``spacing``: None keeps the images'
            own; ``aff_iterations``, ``reg_iterations``, ...), ``seed`` (metric sampling,
            default 1) and ``threads`` (1: repeatable; see :func:`ants_session`).

    Returns:
        :class:`AntsRegistrationResult` whose :meth:`~AntsRegistrationResult.map_points` maps
        template world points to target world points.

    Raises:
        MissingDependencyError: antspyx is not installed.
        InvalidInputError: bad transform, preset or option, or a 2D image.
    """
    if transform not in ANTS_TRANSFORMS:
        raise InvalidInputError(f'unknown ANTs transform {transform!r}; use one of '
                                f'{list(ANTS_TRANSFORMS)}.')
    cfg = ants_config(preset, **overrides)
    keys = ('aff_metric', 'syn_metric', 'aff_sampling', 'syn_sampling',
            'aff_random_sampling_rate', 'grad_step', 'flow_sigma', 'total_sigma')
    with ants_session(cfg['threads']) as ants:
        t0 = time.perf_counter()
        fixed = to_ants(prepare_for_registration(template, cfg['spacing'], 'ANTs'), ants)
        moving = to_ants(prepare_for_registration(target, cfg['spacing'], 'ANTs'), ants)
        workdir = tempfile.TemporaryDirectory(prefix='mmanat_ants_')
        try:
            with _ants_seed(ants, int(cfg['seed'])) as seed_kwargs:
                reg = ants.registration(
                    fixed, moving, type_of_transform=transform,
                    outprefix=os.path.join(workdir.name, 'reg_'),
                    aff_iterations=tuple(int(v) for v in cfg['aff_iterations']),
                    aff_shrink_factors=tuple(int(v) for v in cfg['aff_shrink_factors']),
                    aff_smoothing_sigmas=tuple(cfg['aff_smoothing_sigmas']),
                    reg_iterations=tuple(int(v) for v in cfg['reg_iterations']),
                    **seed_kwargs, **{k: cfg[k] for k in keys})
        except BaseException:
            workdir.cleanup()
            raise
    fwd, inv = reg['fwdtransforms'], reg['invtransforms']
    fwd = [fwd] if isinstance(fwd, str) else list(fwd)
    inv = [inv] if isinstance(inv, str) else list(inv)
    return AntsRegistrationResult(transform, fwd, inv, time.perf_counter() - t0,
                                  dict(cfg, transform=transform, preset=preset,
                                       threads_in_force=_THREADS_IN_FORCE or 'default'),
                                  workdir)
