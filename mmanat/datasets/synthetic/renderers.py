"""Render a synthetic subject's label map as CT, MR and a projection radiograph (X-ray).

* :func:`render_ct`: per-structure HU drawn inside the configured range (native or
  contrast-enhanced), bone cortex, bowel gas, correlated noise and partial-volume blur.
* :func:`render_mr`: T1-like / T2-like / random per-structure intensities, smooth
  multiplicative bias field, blur and Rician noise; on the same grid as the CT (an aligned
  CT/MR pair of one subject).
* :func:`render_xray`: a *parallel* projection of linear attenuation through a CT volume
  along the anterior-posterior axis (world y), shown PA-like (rows = superior at the top,
  columns = world x, i.e. the patient's right on the image's left), air dark and bone bright.
"""
from __future__ import annotations

from typing import Dict, Optional, Tuple

import numpy as np
from scipy import ndimage

from ...structures import MedicalImage, PointSet
from ...utils.exceptions import InvalidInputError
from .anatomy import MAX_LABEL, STRUCTURE_BY_NAME, STRUCTURES, kind_mask_lut

__all__ = ['render_ct', 'render_mr', 'render_xray', 'landmarks_inside', 'MU_WATER_PER_MM',
           'MR_PRESETS']

MU_WATER_PER_MM = 0.0195  # linear attenuation of water at ~70 keV (1/mm)
MR_PRESETS = ('T1', 'T2', 'random')
_BONE = kind_mask_lut(('bone', ))
_GUT = kind_mask_lut(('gut', ))
_GUT_GAS_FRACTION = {'small_bowel': 0.08, 'colon': 0.35}


def _rng(subject, rng, stream: int) -> np.random.Generator:
    if rng is not None:
        return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    return np.random.default_rng([int(subject.meta.get('render_seed', 0)), stream])


def _labels(subject) -> np.ndarray:
    arr = subject.labels.array
    if arr.min() < 0 or arr.max() > MAX_LABEL:
        raise InvalidInputError(f'label map values {arr.min()}..{arr.max()} outside the '
                                f'synthetic structure table 0..{MAX_LABEL}.')
    return arr


def _smooth_field(shape, rng, n_basis: int = 3, amplitude: float = 1.0) -> np.ndarray:
    """A smooth random field on the grid, ``sum c_ijk cos(i pi z) cos(j pi y) cos(k pi x)``."""
    bases = []
    for n in shape:
        t = np.linspace(0.0, 1.0, n)
        bases.append(np.cos(np.pi * t[:, None] * np.arange(n_basis)[None, :]))
    coef = rng.normal(0.0, 1.0, size=(n_basis, ) * 3)
    order = np.add.outer(np.add.outer(np.arange(n_basis), np.arange(n_basis)),
                         np.arange(n_basis))
    coef *= amplitude / (1.0 + order)**1.5
    coef[0, 0, 0] = 0.0
    bz, by, bx = bases
    m = np.einsum('ijk,zi->zjk', coef, bz)
    m = np.einsum('zjk,yj->zyk', m, by)
    return (m.reshape(-1, n_basis) @ bx.T).reshape(shape).astype(np.float32)


def _gut_texture(labels: np.ndarray, rng, spacing) -> Tuple[np.ndarray, np.ndarray]:
    """Boolean masks (gas, fat) inside bowel structures: blobs of ~1 cm from a smoothed
    random field on a coarse (5 mm) grid, thresholded per structure. Drawn from the
    subject's own stream, so its CT and MR show the same gas pockets."""
    gut = _GUT[labels]
    gas = np.zeros(labels.shape, dtype=bool)
    fat = np.zeros(labels.shape, dtype=bool)
    if not gut.any():
        return gas, fat
    coarse_step = np.maximum(1, np.round(5.0 / np.asarray(spacing)[::-1]).astype(int))
    cshape = tuple(int(np.ceil(n / s)) + 2 for n, s in zip(labels.shape, coarse_step))
    field_a = ndimage.gaussian_filter(rng.standard_normal(cshape).astype(np.float32), 0.8)
    field_b = ndimage.gaussian_filter(rng.standard_normal(cshape).astype(np.float32), 0.8)
    idx = np.nonzero(gut)
    coords = [i / s for i, s in zip(idx, coarse_step)]
    va = ndimage.map_coordinates(field_a, coords, order=1)
    vb = ndimage.map_coordinates(field_b, coords, order=1)
    va = (va - va.mean()) / (va.std() + 1e-6)
    vb = (vb - vb.mean()) / (vb.std() + 1e-6)
    labs = labels[idx]
    thr = np.full(MAX_LABEL + 1, np.inf, dtype=np.float32)
    for name, frac in _GUT_GAS_FRACTION.items():
        sel = labs == STRUCTURE_BY_NAME[name].label
        if sel.any():
            thr[STRUCTURE_BY_NAME[name].label] = np.quantile(va[sel], 1.0 - frac)
    g = va > thr[labs]
    f = (~g) & (vb > 1.2)  # mesenteric fat between loops (~11 %)
    gas[idx] = g
    fat[idx] = f
    return gas, fat


def _cortex(labels: np.ndarray) -> np.ndarray:
    """Bone voxels on the surface of bone (6-neighbourhood touches non-bone)."""
    bone = _BONE[labels]
    if not bone.any():
        return bone
    return bone & ~ndimage.binary_erosion(bone, border_value=1)


def _masks(subject):
    """(gas, fat, cortex) masks of a subject's label map, computed once per label array and
    shared by its CT and MR renderings."""
    cache = getattr(subject, '_cache', None)
    labels = _labels(subject)
    if cache is not None and cache.get('labels') is labels:
        return cache['masks']
    gas, fat = _gut_texture(labels, _rng(subject, None, 3), subject.labels.spacing)
    masks = (gas, fat, _cortex(labels))
    if cache is not None:
        cache.update(labels=labels, masks=masks)
    return masks


def render_ct(subject, rng=None, *, contrast: Optional[bool] = None, noise: bool = True,
              blur: bool = True, cortex: bool = True, texture: bool = True) -> MedicalImage:
    """Render a subject as CT (HU, ``float32``) on the label map's grid.

    Every structure gets one value drawn uniformly in its configured range
    (:attr:`~.anatomy.Structure.hu`, or ``hu_contrast`` for a contrast-enhanced scan). With
    ``noise``/``blur``/``cortex``/``texture`` all ``False`` each voxel holds exactly its
    structure's value. ``cortex`` adds 350-650 HU on the surface voxels of bones; ``texture``
    puts gas (-950 HU) and fat pockets into bowel; ``noise`` adds white noise that the
    partial-volume ``blur`` (Gaussian, 0.5-0.8 voxel) turns into correlated noise of
    ~8-20 HU; without blur the noise is white with that standard deviation.

    Args:
        subject: a :class:`~.phantom.SyntheticSubject`.
        rng: ``Generator`` or seed; default: derived from the subject's render seed
            (deterministic per subject).
        contrast: contrast-enhanced (portal-venous-like) scan; ``None``: random (p = 0.5).

    Returns:
        ``MedicalImage`` with modality ``'CT'``; ``meta['tissue_hu']`` holds the drawn
        values, ``meta['contrast']`` the phase.
    """
    rng = _rng(subject, rng, 1)
    labels = _labels(subject)
    if contrast is None:
        contrast = bool(rng.uniform() < 0.5)
    lut = np.full(MAX_LABEL + 1, -1000.0, dtype=np.float32)
    values: Dict[str, float] = {}
    for s in STRUCTURES:
        lo, hi = s.hu_range(contrast)
        v = float(rng.uniform(lo, hi)) if hi > lo else float(lo)
        lut[s.label] = v
        values[s.name] = v
    ct = lut[labels]
    gas, fat, cortex_mask = _masks(subject) if (texture or cortex) else (None, None, None)
    if texture:
        ct[gas] = -950.0
        ct[fat] = -95.0
    if cortex:
        ct[cortex_mask] += float(rng.uniform(350.0, 650.0))
    sigma_noise = float(rng.uniform(8.0, 20.0))
    sigma_blur = float(rng.uniform(0.5, 0.8))
    if noise:
        white = rng.standard_normal(ct.shape, dtype=np.float32)
        # blurring white noise with a Gaussian of sigma s (voxels) divides its std by
        # (2 sqrt(pi) s)^(3/2); scale so the result has std sigma_noise
        gain = (2 * np.sqrt(np.pi) * sigma_blur)**1.5 if blur else 1.0
        ct += white * np.float32(sigma_noise * gain)
    if blur:
        ct = ndimage.gaussian_filter(ct, sigma_blur, truncate=3.0)
    np.clip(ct, -1024.0, 3071.0, out=ct)
    meta = dict(synthetic=True, contrast=contrast, tissue_hu=values,
                noise_sigma_hu=sigma_noise if noise else 0.0,
                blur_sigma_vox=sigma_blur if blur else 0.0)
    return subject.labels.with_array(ct.astype(np.float32, copy=False), modality='CT',
                                     meta=meta)


def render_mr(subject, rng=None, preset: str = 'T1', *, bias: bool = True,
              noise: bool = True, blur: bool = True) -> MedicalImage:
    """Render a subject as MR (arbitrary units, ``float32``, ~0..1000) on the label grid.

    Args:
        subject: a :class:`~.phantom.SyntheticSubject`.
        rng: ``Generator`` or seed; default: derived from the subject's render seed.
        preset: ``'T1'`` (fat bright, fluid dark), ``'T2'`` (fluid bright) or ``'random'``
            (every structure a uniform random intensity, SynthSeg-style; air stays dark).
        bias: multiply a smooth random bias field (about +-20 %).
        noise: Rician noise (magnitude of complex Gaussian noise, 1.5-3 % of the maximum).
        blur: partial-volume Gaussian blur (0.5-0.8 voxel).

    Returns:
        ``MedicalImage`` with modality ``'MR'`` and the same geometry as ``subject.labels``.
    """
    if preset not in MR_PRESETS:
        raise InvalidInputError(f'MR preset {preset!r} unknown; use one of {MR_PRESETS}.')
    rng = _rng(subject, rng, 2)
    labels = _labels(subject)
    lut = np.zeros(MAX_LABEL + 1, dtype=np.float32)
    values = {}
    for s in STRUCTURES:
        if preset == 'random':
            if s.name in ('lung_left', 'lung_right'):
                v = rng.uniform(0.0, 0.15)  # lungs stay dark (little proton density)
            elif s.kind in ('air', 'device'):
                v = 0.0  # air, airways and the table give no signal
            else:
                v = rng.uniform(0.0, 1.0)
        else:
            base = s.t1 if preset == 'T1' else s.t2
            v = 0.0 if base == 0 else float(np.clip(base + rng.normal(0, 0.04), 0.01, 1.0))
        lut[s.label] = v
        values[s.name] = float(v)
    mr = lut[labels]
    gas, _, cortex_mask = _masks(subject)
    mr[gas] = 0.02  # the same gas pockets as in the subject's CT (anatomy, not contrast)
    mr[cortex_mask] *= 0.15  # cortical bone: no signal
    if bias:
        mr *= np.exp(_smooth_field(mr.shape, rng, 3, amplitude=0.25))
    if blur:
        mr = ndimage.gaussian_filter(mr, float(rng.uniform(0.5, 0.8)), truncate=3.0)
    if noise:
        sigma = np.float32(rng.uniform(0.015, 0.03))
        n1 = rng.standard_normal(mr.shape, dtype=np.float32)
        n2 = rng.standard_normal(mr.shape, dtype=np.float32)
        mr = np.sqrt((mr + sigma * n1)**2 + (sigma * n2)**2)
    mr *= np.float32(1000.0)
    meta = dict(synthetic=True, preset=preset, tissue_intensity=values)
    return subject.labels.with_array(mr.astype(np.float32, copy=False), modality='MR',
                                     meta=meta)


def _canonical_axes(image: MedicalImage):
    """Flip array axes so the direction becomes the identity; require an axis-aligned,
    non-permuted direction (diagonal of +-1)."""
    d = image.direction
    if not np.allclose(np.abs(d), np.eye(3), atol=1e-6):
        raise InvalidInputError(
            f'{image.path or "CT volume"}: render_xray needs an axis-aligned volume (direction '
            f'diagonal +-1), got {np.round(d, 4).tolist()}; resample it first (e.g. with '
            'SimpleITK.Resample onto an identity-direction grid).')
    arr = image.array
    origin = image.origin.copy()
    for axis_itk in range(3):
        if d[axis_itk, axis_itk] < 0:
            n = image.size[axis_itk]
            arr = np.flip(arr, axis=2 - axis_itk)
            origin[axis_itk] -= (n - 1) * image.spacing[axis_itk]
    return arr, origin


def render_xray(ct_image: MedicalImage, landmarks: Optional[PointSet] = None, *,
                mu_water: float = MU_WATER_PER_MM, window: Optional[float] = None,
                gamma: float = 1.6, exclude: Optional[np.ndarray] = None
                ) -> Tuple[MedicalImage, Optional[PointSet]]:
    """Project a CT volume into a radiograph (parallel beam along the world y axis).

    Attenuation per voxel ``mu = mu_water * (1 + HU / 1000)`` (clipped at 0), line integral
    ``p(z, x) = sum_y mu * dy`` (dimensionless), displayed dark-air / bright-bone as
    ``(min(p / window, 1)) ** gamma`` with ``window`` 1.2 x the 99.5th percentile of ``p``
    unless given. Parallel projection means world x and z are kept exactly: a 3D point ``(x, y, z)``
    projects to the 2D world point ``(x, z)``.

    Geometry of the 2D image (ITK order ``(column, row)``): spacing ``(sx, sz)``; direction
    ``[[1, 0], [0, -1]]`` (columns go to the patient's left = world +x, rows go inferior =
    world -z, so the head is at the top, PA-like display); origin = ``(x, z)`` of the
    top-left pixel. Its "world" is the ``(x, z)`` plane in mm.

    Args:
        ct_image: CT in HU with an axis-aligned direction.
        landmarks: optional 3D world points to project.
        mu_water: attenuation of water (1/mm).
        window: line integral shown as white; default from the image.
        gamma: display gamma (> 1 darkens the lungs against the mediastinum, as the
            contrast processing of chest radiographs does).
        exclude: optional boolean mask on the CT grid of voxels to treat as air (e.g. the
            CT table: ``subject.labels.array == STRUCTURE_BY_NAME['table'].label``).

    Returns:
        ``(xray, points2d)``: ``MedicalImage`` 2D ``float32`` in ``[0, 1]`` with modality
        ``'XR'`` (``meta['line_integral']`` scale, ``meta['projection']``) and the projected
        landmarks (``PointSet`` of ``(x, z)`` world mm, ``None`` without landmarks).
    """
    if ct_image.ndim != 3:
        raise InvalidInputError(f'{ct_image.path or "CT"}: render_xray needs a 3D CT volume.')
    if exclude is not None:
        exclude = np.asarray(exclude, dtype=bool)
        if exclude.shape != ct_image.shape:
            raise InvalidInputError(f'exclude mask shape {exclude.shape} differs from the CT '
                                    f'shape {ct_image.shape}; give a mask on the CT grid.')
        ct_image = ct_image.with_array(np.where(exclude, np.float32(-1000.0),
                                                ct_image.array.astype(np.float32)))
    arr, origin = _canonical_axes(ct_image)
    sx, sy, sz = ct_image.spacing
    mu = np.maximum(arr.astype(np.float32) * np.float32(mu_water / 1000.0)
                    + np.float32(mu_water), 0.0)
    p = mu.sum(axis=1, dtype=np.float32) * np.float32(sy)  # (z, x)
    if window is None:
        window = 1.2 * float(np.percentile(p, 99.5)) or 1.0
    img = np.clip(p / np.float32(window), 0.0, 1.0)**np.float32(gamma)
    img = img[::-1].copy()  # row 0 = highest z (superior)
    nz = arr.shape[0]
    z_top = origin[2] + (nz - 1) * sz
    xr = MedicalImage(img.astype(np.float32), spacing=(sx, sz), origin=(origin[0], z_top),
                      direction=np.array([[1.0, 0.0], [0.0, -1.0]]), modality='XR',
                      meta=dict(synthetic=True, projection='parallel, anterior-posterior '
                                '(along world y); 2D world = (x, z) mm',
                                line_integral_window=window, mu_water_per_mm=mu_water,
                                gamma=gamma, view='PA-like'))
    pts2d = None
    if landmarks is not None:
        xyz = landmarks.xyz
        pts2d = PointSet(xyz[:, [0, 2]], names=list(landmarks.names),
                         extra={k: list(v) for k, v in landmarks.extra.items()})
    return xr, pts2d


def landmarks_inside(image: MedicalImage, points: PointSet, margin: float = 0.0) -> np.ndarray:
    """Which landmarks lie inside ``image``: the ``inside`` flag of the landmark files.

    A landmark is inside when its world position falls within ``margin`` pixels / voxels of
    the outer pixel centres of ``image`` (0: between the first and last pixel centres, the
    rule of ``landmark_valid`` in
    :func:`~mmanat.datasets.synthetic_radiograph_dataset.render_synthetic_xray`) and, when
    ``points.extra`` has an ``in_fov`` column (the 3D landmarks of
    :func:`~mmanat.datasets.synthetic.generate_subject` and their projections by
    :func:`render_xray`), its anatomy was inside the imaged volume. For a radiograph the
    second condition matters: a landmark projected into the image but cut off by the CT's
    field of view along the beam is not depicted.

    Args:
        image: the 3D volume or the 2D radiograph the points belong to.
        points: world points of the image's dimension (``(N, 3)`` or ``(N, 2)``).
        margin: pixels beyond the outer pixel centres that still count (negative: inside
            by that much).

    Returns:
        bool ``(N,)``.

    Raises:
        InvalidInputError: the points do not have the image's dimension.
    """
    xyz = np.asarray(points.xyz, dtype=np.float64)
    if xyz.shape[1] != image.ndim:
        raise InvalidInputError(f'{image.path or "image"}: {xyz.shape[1]}D landmarks for a '
                                f'{image.ndim}D image; project 3D landmarks first '
                                '(render_xray).')
    inside = image.contains_world(xyz, margin=margin)
    if 'in_fov' in points.extra:
        inside &= np.asarray(points.extra['in_fov'], dtype=bool)
    return inside

