"""Drawing one synthetic subject: :func:`generate_subject` builds the phantom model of a seed,
chooses the field of view, paints the ``int16`` label map on a grid with real geometry
(identity direction, non-zero origin, LPS world millimetres), adds lesions and places the
landmarks. Arrays are ``(z, y, x)``; sizes and spacings given as triples are ``(x, y, z)``.
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple, Union

import numpy as np

from ...structures import MedicalImage, PointSet
from ...utils.exceptions import InvalidInputError
from .anatomy import LABEL_NAMES, LANDMARK_NAMES, LANDMARK_PARENTS
from .canvas import GridCanvas
from .lesions import ensure_inside_parents, sample_lesions
from .phantom import PhantomModel, SyntheticSubject

__all__ = ['generate_subject', 'DEFAULT_FOV_MM']

# default field of view (x, y, z) in mm: 176 x 144 x 160 voxels at 2 mm (~160^3)
DEFAULT_FOV_MM = (352.0, 288.0, 320.0)


def _seed_sequence(seed, rng) -> np.random.SeedSequence:
    if rng is not None:
        return np.random.SeedSequence(rng.integers(0, 2**63, size=4).tolist())
    if seed is None:
        return np.random.SeedSequence()
    return np.random.SeedSequence(int(seed))


def _as_xyz(value, what) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64).reshape(-1)
    if arr.size == 1:
        arr = np.repeat(arr, 3)
    if arr.size != 3 or not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise InvalidInputError(f'{what} must be one positive number or three (x, y, z), got '
                                f'{value!r}.')
    return arr


def generate_subject(seed: Optional[int] = None, *, rng: Optional[np.random.Generator] = None,
                     spacing: Union[float, Sequence[float]] = 2.0,
                     shape: Optional[Sequence[int]] = None,
                     fov_mm: Sequence[float] = DEFAULT_FOV_MM,
                     z_range: Union[str, Tuple[float, float]] = 'random',
                     lesions: Union[str, int] = 'random', deform: bool = True,
                     check_landmarks: bool = True, threads: int = 2) -> SyntheticSubject:
    """Draw one synthetic torso subject and paint its label map.

    Args:
        seed: integer seed (the subject is a pure function of it and the options; the
            anatomy does not depend on ``spacing``/``shape``/``z_range``).
        rng: a numpy ``Generator`` to draw the subject's seed from (used instead of
            ``seed`` when given).
        spacing: voxel size in mm, one value or ``(x, y, z)``.
        shape: grid size ``(nz, ny, nx)``; default ``fov_mm / spacing``.
        fov_mm: field of view ``(x, y, z)`` in mm (default 352 x 288 x 320 mm: 176 x 144 x
            160 voxels at 2 mm).
        z_range: ``'random'``: the z extent of the field of view lies at a random height of
            the torso (pelvic floor to neck); ``'full'``: the whole torso (the grid's z size
            follows unless ``shape`` fixes it); or ``(z0, z1)`` in mm above the pelvic floor
            (template frame, before the deformation: approximate by a few mm).
        lesions: ``'random'`` (none with probability 0.5, else 1-3) or a count.
        deform: apply the smooth random deformation (rotation + low-frequency warp).
        check_landmarks: verify that every landmark lies in its parent structure (true by
            construction; a few milliseconds); see
            :func:`~.lesions.ensure_inside_parents`.
        threads: threads that evaluate shapes while the main thread paints (the result does
            not depend on it).

    Returns:
        :class:`SyntheticSubject`.
    """
    ss = _seed_sequence(seed, rng)
    ss_anat, ss_fov, ss_les, ss_render = ss.spawn(4)
    spacing = _as_xyz(spacing, 'spacing')
    model = PhantomModel(np.random.default_rng(ss_anat), deform=deform)
    rng_fov = np.random.default_rng(ss_fov)

    # ---- grid geometry (identity direction; origin = world position of voxel 0)
    if shape is not None:
        nz, ny, nx = (int(v) for v in shape)
        if min(nz, ny, nx) < 1:
            raise InvalidInputError(f'shape must be 3 positive integers (z, y, x), got {shape}.')
        fov = np.array([nx, ny, nz]) * spacing
    else:
        fov = _as_xyz(fov_mm, 'fov_mm')
    z_bot_w, z_top_w = model.body_z_range_world()
    off = model.offset
    if isinstance(z_range, str):
        if z_range == 'full':
            z0, z1 = z_bot_w, z_top_w
            if shape is None:
                fov[2] = z1 - z0
        elif z_range == 'random':
            span = z_top_w - z_bot_w
            lo_start = z_bot_w - 15.0
            hi_start = max(lo_start, z_bot_w + span + 15.0 - fov[2])
            z0 = rng_fov.uniform(lo_start, hi_start)
        else:
            raise InvalidInputError(f"z_range must be 'random', 'full' or (z0, z1), got "
                                    f'{z_range!r}.')
    else:
        t0, t1 = (float(v) for v in z_range)
        if not t1 > t0:
            raise InvalidInputError(f'z_range {z_range!r}: need z0 < z1 (mm above the pelvic '
                                    'floor).')
        z0 = t0 + off[2]
        if shape is None:
            fov[2] = t1 - t0
    n = np.maximum(1, np.round(fov / spacing).astype(int)) if shape is None \
        else np.array([nx, ny, nz])
    x0 = off[0] - (n[0] - 1) * spacing[0] / 2 + rng_fov.uniform(-12, 12)
    y_table_bottom = off[1] + 60.0 + rng_fov.uniform(-10, 10)
    y0 = y_table_bottom - (n[1] - 1) * spacing[1]
    origin = np.array([x0, y0, z0])
    # snap the origin to a tidy value (as scanners do), keeps it non-trivial
    origin = np.round(origin * 8) / 8

    canvas = GridCanvas(model.deformation, (n[2], n[1], n[0]), spacing, origin)
    model.paint(canvas, workers=threads)

    # ---- landmarks and lesions
    lm_w = model.landmarks_world()
    rng_les = np.random.default_rng(ss_les)
    if lesions == 'random':
        count = 0 if rng_les.uniform() < 0.5 else int(rng_les.integers(1, 4))
    else:
        count = int(lesions)
    les, les_items = sample_lesions(model, rng_les, count, lm_w) if count else ([], [])
    for label, shp, allow in les_items:
        shp.paint(canvas, label, allow)
    model.lesion_items = les_items

    labels = MedicalImage(canvas.labels, spacing=spacing, origin=origin, modality=None,
                          meta={'kind': 'label_map', 'synthetic': True})
    adjusted = []
    if check_landmarks:
        lm_w, adjusted = ensure_inside_parents(model, lm_w, les_items)
    in_fov = labels.contains_world(lm_w, margin=-0.5)
    landmarks = PointSet(lm_w, names=list(LANDMARK_NAMES), extra={'in_fov': in_fov.tolist()})
    render_seed = int(ss_render.generate_state(1, dtype=np.uint64)[0])
    meta = dict(seed=seed, seed_entropy=ss.entropy, render_seed=render_seed,
                spacing=spacing.tolist(), shape_zyx=list(canvas.shape),
                z_range_world=[float(origin[2]), float(origin[2] + (n[2] - 1) * spacing[2])],
                body_z_range_world=[z_bot_w, z_top_w], landmark_parents=dict(LANDMARK_PARENTS),
                adjusted_landmarks=adjusted,
                lesion_organs=[LABEL_NAMES[int(model.label_at(c[None])[0])] for c, _ in les],
                **{k: (float(v) if isinstance(v, (float, np.floating)) else v)
                   for k, v in model.info.items()})
    return SyntheticSubject(labels=labels, label_names=dict(LABEL_NAMES), landmarks=landmarks,
                            lesions=les, meta=meta, model=model)
