"""Benchmark case generators with exact ground truth.

1. :func:`deformation_cases` - a real volume (the template) warped by a known random affine +
   smooth deformation, with intensity changes and a field-of-view cut (the target); points
   sampled inside the body of the template; their exact positions in the target.
2. :func:`cross_subject_cases` - pairs of synthetic subjects (CT->CT, MR->MR, CT->MR); the
   named landmarks of the generator are the ground truth.
3. :func:`longitudinal_lesion_cases` - a synthetic subject and its follow-up (lesions grown or
   shrunk, the follow-up deformed like in 1.), written in the DLT ``test.json`` layout.

Direction conventions of the deformation (:class:`RandomDeformation`): resampling needs, for
every *target* voxel ``q``, the template position it shows, ``R(q) = A(q + d(q))`` (``d`` a
smooth displacement field, ``A`` an affine); the target image is ``template(R(q))``. A template
point ``p`` therefore appears in the target at ``q = R^-1(p)``, found by a vectorised
fixed-point iteration ``q <- A^-1(p) - d(q)`` (``d`` is made contractive). The field is linear
between its grid nodes, exactly as ITK's ``DisplacementFieldTransform`` interpolates it, so the
numpy ground truth and the SimpleITK resampling agree to floating-point precision (tested by
marking a voxel and finding it where the ground truth says).
"""
from __future__ import annotations

import os
import os.path as osp
from dataclasses import dataclass, field, replace
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..structures.image import MedicalImage
from ..utils.exceptions import InvalidInputError


# ----------------------------------------------------------------------------- containers
@dataclass
class LandmarkCase:
    """One benchmark case: find ``template_points`` of ``template`` in ``target``.

    Attributes:
        name: a short label (``'lung1/def0'``, ``'CT->MR/0'``).
        template, target: the two images.
        template_points: ``(N, 3)`` query points (world LPS mm) in the template.
        target_points: ``(N, 3)`` ground-truth positions (world LPS mm) in the target.
        names: one name per point.
        meta: generator parameters (seed, deformation size, ...).
    """

    name: str
    template: MedicalImage
    target: MedicalImage
    template_points: np.ndarray
    target_points: np.ndarray
    names: List[str] = None
    meta: Dict = field(default_factory=dict)

    def __post_init__(self):
        self.template_points = np.asarray(self.template_points, dtype=np.float64).reshape(-1, 3)
        self.target_points = np.asarray(self.target_points, dtype=np.float64).reshape(-1, 3)
        if self.template_points.shape != self.target_points.shape:
            raise InvalidInputError(f'case {self.name}: {len(self.template_points)} template '
                                    f'points but {len(self.target_points)} target points.')
        if self.names is None:
            self.names = [f'p{i}' for i in range(len(self.template_points))]


# ----------------------------------------------------------------------------- deformation
@dataclass
class RandomDeformation:
    """``R(q) = M (q + d(q) - c) + c + t``: target world point -> template world point.

    Attributes:
        matrix, center, translation: the affine part (ITK ``AffineTransform`` parameters).
        field: ``(z, y, x, 3)`` displacement (world mm, components x, y, z) on the grid
            ``field_origin`` / ``field_spacing`` / ``field_direction`` (ITK order).
    """

    matrix: np.ndarray
    center: np.ndarray
    translation: np.ndarray
    field: np.ndarray
    field_origin: np.ndarray
    field_spacing: np.ndarray
    field_direction: np.ndarray

    # ------------------------------------------------------------------ SimpleITK
    def sitk_transform(self):
        """``SimpleITK.CompositeTransform`` of ``R`` (target -> template), for resampling."""
        import SimpleITK as sitk
        aff = sitk.AffineTransform(3)
        aff.SetMatrix([float(v) for v in self.matrix.reshape(-1)])
        aff.SetCenter([float(v) for v in self.center])
        aff.SetTranslation([float(v) for v in self.translation])
        img = sitk.GetImageFromArray(np.ascontiguousarray(self.field, dtype=np.float64),
                                     isVector=True)
        img.SetOrigin([float(v) for v in self.field_origin])
        img.SetSpacing([float(v) for v in self.field_spacing])
        img.SetDirection([float(v) for v in self.field_direction.reshape(-1)])
        disp = sitk.DisplacementFieldTransform(img)  # linear interpolation of the field
        # a CompositeTransform applies its last transform first: aff(disp(q))
        return sitk.CompositeTransform([aff, disp])

    # ------------------------------------------------------------------ numpy
    def displacement(self, q) -> np.ndarray:
        """``d(q)`` at ``(N, 3)`` world points, trilinear like ITK (zero outside the grid)."""
        from scipy.ndimage import map_coordinates
        q = np.asarray(q, dtype=np.float64).reshape(-1, 3)
        inv = np.linalg.inv(self.field_direction * self.field_spacing[None, :])
        idx = (q - self.field_origin) @ inv.T  # (i, j, k)
        coords = idx[:, ::-1].T  # (k, j, i) for a (z, y, x) array
        out = np.stack([map_coordinates(self.field[..., c], coords, order=1, mode='constant',
                                        cval=0.0) for c in range(3)], axis=1)
        # ITK: outside the buffer (beyond half a voxel) the displacement is zero
        size = np.array(self.field.shape[:3][::-1])
        inside = np.all((idx >= -0.5) & (idx <= size - 0.5), axis=1)
        out[~inside] = 0.0
        return out

    def target_to_template(self, q) -> np.ndarray:
        """``R(q)``: where the target point ``q`` (world mm) shows the template."""
        q = np.asarray(q, dtype=np.float64).reshape(-1, 3)
        return (q + self.displacement(q) - self.center) @ self.matrix.T + self.center + \
            self.translation

    def template_to_target(self, p, tol: float = 1e-6, max_iter: int = 200) -> np.ndarray:
        """``R^-1(p)``: where the template point ``p`` (world mm) appears in the target.

        Fixed-point iteration ``q <- A^-1(p) - d(q)``; converges because the field's Lipschitz
        constant is kept below 0.5. Raises if the residual ``|R(q) - p|`` stays above 1e-3 mm.
        """
        p = np.asarray(p, dtype=np.float64).reshape(-1, 3)
        u = (p - self.center - self.translation) @ np.linalg.inv(self.matrix).T + self.center
        q = u.copy()
        for _ in range(max_iter):
            q_new = u - self.displacement(q)
            step = np.abs(q_new - q).max() if len(q) else 0.0
            q = q_new
            if step < tol:
                break
        resid = np.linalg.norm(self.target_to_template(q) - p, axis=1)
        if len(resid) and resid.max() > 1e-3:
            raise RuntimeError(f'deformation inverse did not converge (residual '
                               f'{resid.max():.2e} mm); lower max_displacement_mm.')
        return q


def _rotation(axis, angle_rad) -> np.ndarray:
    axis = np.asarray(axis, dtype=np.float64)
    axis = axis / np.linalg.norm(axis)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle_rad) * k + (1 - np.cos(angle_rad)) * (k @ k)


def random_deformation(image: MedicalImage, rng: np.random.Generator,
                       max_rotation_deg: float = 8.0, max_scale: float = 0.08,
                       max_translation_mm: float = 10.0, max_displacement_mm: float = 8.0,
                       smoothness_mm: float = 40.0, field_spacing_mm: float = 8.0,
                       margin_mm: float = 60.0) -> RandomDeformation:
    """A random affine + smooth deformation around ``image`` (see :class:`RandomDeformation`).

    Args:
        image: the template (its extent and centre set the field grid and the affine centre).
        rng: random generator.
        max_rotation_deg: rotation angle about a random axis, uniform in +-this.
        max_scale: per-axis scale uniform in ``1 +- max_scale``.
        max_translation_mm: per-axis translation uniform in +-this.
        max_displacement_mm: largest length of the smooth displacement; 0 = affine only.
        smoothness_mm: Gaussian smoothing (sigma, mm) of the random field.
        field_spacing_mm: grid spacing of the displacement field.
        margin_mm: the field grid extends this far beyond the image and tapers to zero there.
    """
    from scipy.ndimage import gaussian_filter
    if image.ndim != 3:
        raise InvalidInputError('random_deformation needs a 3D image.')
    angle = np.deg2rad(rng.uniform(-max_rotation_deg, max_rotation_deg))
    matrix = _rotation(rng.normal(size=3), angle) @ np.diag(
        1.0 + rng.uniform(-max_scale, max_scale, size=3))
    centre = image.index_to_world((image.size - 1) / 2.0)
    translation = rng.uniform(-max_translation_mm, max_translation_mm, size=3)

    fs = float(field_spacing_mm)
    extent = (image.size - 1) * image.spacing  # along the index axes, mm
    n = np.ceil((extent + 2 * margin_mm) / fs).astype(int) + 1  # (nx, ny, nz)
    origin = image.origin - image.direction @ np.full(3, margin_mm)
    shape = tuple(n[::-1])
    field_arr = np.zeros(shape + (3,))
    if max_displacement_mm > 0:
        sigma = max(smoothness_mm / fs, 0.5)
        noise = rng.standard_normal(shape + (3,))
        for c in range(3):
            field_arr[..., c] = gaussian_filter(noise[..., c], sigma, mode='constant')
        # taper to exactly zero over the margin (outer two nodes zero)
        ramp = []
        for ax in range(3):  # x, y, z
            pos = np.arange(n[ax]) * fs - margin_mm  # mm from the image border
            dist = np.minimum(pos, extent[ax] - pos)  # >= 0 inside the image
            w = np.clip((dist + margin_mm - 2 * fs) / max(margin_mm - 2 * fs, 1e-6), 0, 1)
            ramp.append(w * w * (3 - 2 * w))  # smoothstep
        window = ramp[2][:, None, None] * ramp[1][None, :, None] * ramp[0][None, None, :]
        field_arr *= window[..., None]
        # rotate the field components into world axes (the noise lives on the index axes)
        field_arr = field_arr @ image.direction.T
        norm = np.linalg.norm(field_arr, axis=-1).max()
        if norm > 0:
            field_arr *= max_displacement_mm / norm
        # keep the field contractive (Lipschitz < 0.5) so the inverse exists and converges
        grads = [np.gradient(field_arr[..., c], fs) for c in range(3)]
        lip = np.sqrt(sum(g ** 2 for gc in grads for g in gc)).max()
        if lip > 0.5:
            field_arr *= 0.5 / lip
    return RandomDeformation(matrix=matrix, center=centre, translation=translation,
                             field=field_arr, field_origin=origin, field_spacing=np.full(3, fs),
                             field_direction=image.direction.copy())


def _target_grid(image: MedicalImage, rng, fov_cut: Sequence[float],
                 spacing_jitter: float) -> MedicalImage:
    """An empty grid covering a random sub-box of ``image`` (each side cut by up to
    ``fov_cut[axis]`` of the extent), spacing scaled by ``1 + U(0, spacing_jitter)``."""
    cut = np.asarray(fov_cut, dtype=np.float64).reshape(-1)
    cut = np.repeat(cut, 3) if cut.size == 1 else cut
    lo = rng.uniform(0, cut)
    hi = rng.uniform(0, cut)
    spacing = image.spacing * (1.0 + rng.uniform(0, spacing_jitter, size=3))
    extent = (image.size - 1) * image.spacing
    first = lo * extent  # mm from voxel 0 along the index axes
    length = extent * np.maximum(1.0 - lo - hi, 0.2)
    size = np.maximum(np.floor(length / spacing).astype(int) + 1, 4)
    origin = image.origin + image.direction @ first
    return MedicalImage(np.zeros(tuple(size[::-1]), np.uint8), spacing=spacing, origin=origin,
                        direction=image.direction.copy(), modality=image.modality)


def random_intensity_change(array: np.ndarray, modality: Optional[str],
                            rng: np.random.Generator, strength: float = 1.0) -> np.ndarray:
    """A plausible change of contrast between two scans (float32 result).

    CT: linear ``a x + b`` (a = 1 +- 0.05, b = +-30 HU) plus Gaussian noise (0-25 HU).
    Other modalities: gamma 0.8-1.25 on the min-max normalised values, a smooth multiplicative
    bias field (+-15 %) and noise (0-2 % of the range), mapped back to the original range.
    ``strength`` scales every change (0 = none).
    """
    from scipy.ndimage import zoom
    arr = np.asarray(array, dtype=np.float32)
    s = float(strength)
    if modality == 'CT':
        a = 1.0 + s * rng.uniform(-0.05, 0.05)
        b = s * rng.uniform(-30, 30)
        out = a * arr + b + rng.normal(0, s * rng.uniform(0, 25), arr.shape).astype(np.float32)
        return out.astype(np.float32)
    lo, hi = float(arr.min()), float(arr.max())
    rng_ = max(hi - lo, 1e-6)
    x = (arr - lo) / rng_
    gamma = float(np.exp(s * rng.uniform(np.log(0.8), np.log(1.25))))
    x = np.power(np.clip(x, 0, 1), gamma)
    coarse = 1.0 + s * 0.15 * np.tanh(rng.normal(size=(4, 4, 4)) if arr.ndim == 3
                                       else rng.normal(size=(4, 4)))
    bias = zoom(coarse, [d / c for d, c in zip(arr.shape, coarse.shape)], order=1,
                grid_mode=True, mode='nearest')
    x = x * bias + rng.normal(0, s * rng.uniform(0, 0.02), arr.shape)
    return (x * rng_ + lo).astype(np.float32)


def warp_image(image: MedicalImage, deformation: RandomDeformation,
               reference: MedicalImage, interpolation: str = 'linear',
               default_value: Optional[float] = None) -> MedicalImage:
    """Resample ``image`` (template) onto ``reference``'s grid through ``deformation``:
    ``out(q) = image(R(q))``."""
    from ..structures.resample import resample_to_reference
    src = image if interpolation == 'nearest' else image.with_array(
        image.array.astype(np.float32))
    return resample_to_reference(src, reference, interpolation=interpolation,
                                 transform=deformation.sitk_transform(),
                                 default_value=default_value)


def body_mask(image: MedicalImage) -> np.ndarray:
    """Foreground mask: CT > -500 HU, otherwise above the Otsu threshold; the largest
    connected component, holes filled."""
    from scipy import ndimage
    arr = image.array
    if image.modality == 'CT' or (image.modality is None and arr.min() <= -500):
        mask = arr > -500
    else:
        from skimage.filters import threshold_otsu
        mask = arr > threshold_otsu(arr.astype(np.float32))
    lab, n = ndimage.label(mask)
    if n > 1:
        sizes = np.bincount(lab.reshape(-1))[1:]
        mask = lab == (1 + int(np.argmax(sizes)))
    return ndimage.binary_fill_holes(mask)


def sample_body_points(image: MedicalImage, n: int, rng: np.random.Generator,
                       erode_mm: float = 10.0, mask: Optional[np.ndarray] = None) -> np.ndarray:
    """``n`` random world points (mm) inside the body of ``image``, at least ``erode_mm`` from
    its surface (fewer if the body is smaller)."""
    from scipy import ndimage
    mask = body_mask(image) if mask is None else np.asarray(mask, dtype=bool)
    if erode_mm > 0:
        dist = ndimage.distance_transform_edt(mask, sampling=image.spacing[::-1])
        mask = dist >= erode_mm
    idx = np.argwhere(mask)
    if len(idx) == 0:
        raise InvalidInputError(f'{image.path or "<image>"}: no body voxels to sample points '
                                'from (empty foreground after erosion).')
    pick = idx[rng.choice(len(idx), size=min(n, len(idx)), replace=False)].astype(np.float64)
    pick += rng.uniform(-0.5, 0.5, size=pick.shape)
    return image.array_index_to_world(pick)


def deform_case(template: MedicalImage, rng: np.random.Generator, n_points: int = 50,
                name: str = 'case', fov_cut=(0.1, 0.1, 0.2), spacing_jitter: float = 0.15,
                intensity_strength: float = 1.0, edge_margin_mm: float = 8.0,
                **deformation_kwargs) -> Tuple[LandmarkCase, RandomDeformation]:
    """Warp ``template`` into a new target and return the case and its deformation.

    Points are sampled inside the template's body; a point is kept only when its ground-truth
    position lies inside the target grid at least ``edge_margin_mm`` from its border.
    """
    deformation = random_deformation(template, rng, **deformation_kwargs)
    grid = _target_grid(template, rng, fov_cut, spacing_jitter)
    default = float(template.array.min())
    target = warp_image(template, deformation, grid, default_value=default)
    target = target.with_array(random_intensity_change(target.array, template.modality, rng,
                                                       intensity_strength))
    pts = sample_body_points(template, 4 * n_points, rng)
    gt = deformation.template_to_target(pts)
    idx = target.world_to_index(gt)
    margin = edge_margin_mm / target.spacing
    keep = np.all((idx >= margin) & (idx <= target.size - 1 - margin), axis=1)
    pts, gt = pts[keep][:n_points], gt[keep][:n_points]
    case = LandmarkCase(name, template, target, pts, gt,
                        meta=dict(kind='deformation', fov_cut=list(map(float, np.ravel(fov_cut))),
                                  **{k: float(v) for k, v in deformation_kwargs.items()}))
    return case, deformation


def deformation_cases(images: Dict[str, MedicalImage], n_per_image: int = 2,
                      n_points: int = 50, spacing: Optional[float] = 2.0, seed: int = 0,
                      **kwargs) -> List[LandmarkCase]:
    """Benchmark 1: each image (e.g. the two real CTs) resampled to ``spacing`` mm (``None``:
    kept) and warped ``n_per_image`` times (see :func:`deform_case`)."""
    from ..structures.resample import resample_to_spacing
    cases = []
    for i, (key, image) in enumerate(sorted(images.items())):
        tmpl = image if spacing is None else resample_to_spacing(image, spacing)
        for j in range(n_per_image):
            rng = np.random.default_rng([seed, i, j])
            case, _ = deform_case(tmpl, rng, n_points=n_points, name=f'{key}/def{j}', **kwargs)
            case.meta.update(seed=[seed, i, j], source=image.path)
            cases.append(case)
    return cases


# ----------------------------------------------------------------------------- synthetic
def _render(subject, modality: str, rng, **kwargs):
    from ..datasets import synthetic
    fn = {'CT': synthetic.render_ct, 'MR': synthetic.render_mr}[modality]
    return fn(subject, rng, **kwargs)


def cross_subject_cases(modality_pairs: Sequence[Tuple[str, str]] = (('CT', 'CT'),
                                                                     ('MR', 'MR'),
                                                                     ('CT', 'MR')),
                        n_pairs: int = 2, spacing: float = 2.0, seed: int = 0,
                        margin_mm: float = 4.0,
                        z_range=(250.0, 570.0)) -> List[LandmarkCase]:
    """Benchmark 2: the named landmarks of one synthetic subject found in another.

    For every modality pair ``(template modality, target modality)`` and ``k < n_pairs``, the
    template is subject ``seed + 2k`` and the target subject ``seed + 2k + 1`` (the same
    subjects for every modality pair, so only the modality changes between the groups).
    Both are imaged over the same anatomical range ``z_range`` (mm above the pelvic floor of
    the phantom; default 250-570 mm, chest and upper abdomen, like one scan protocol; see
    :func:`~mmanat.datasets.synthetic.generate_subject`). Points are the landmarks that lie
    inside both images, ``margin_mm`` from the borders.
    """
    from ..datasets.synthetic import generate_subject
    cache = {}

    def subject(s):
        if s not in cache:
            cache[s] = generate_subject(s, spacing=spacing, z_range=z_range)
        return cache[s]

    cases = []
    for mod_a, mod_b in modality_pairs:
        for k in range(n_pairs):
            sa, sb = seed + 2 * k, seed + 2 * k + 1
            a, b = subject(sa), subject(sb)
            img_a = _render(a, mod_a.upper(), np.random.default_rng([seed, sa, 1]))
            img_b = _render(b, mod_b.upper(), np.random.default_rng([seed, sb, 2]))
            names = [nm for nm in a.landmarks.names if nm in set(b.landmarks.names)]
            pa = np.array([a.landmarks[nm] for nm in names]).reshape(-1, 3)
            pb = np.array([b.landmarks[nm] for nm in names]).reshape(-1, 3)
            ok = (img_a.contains_world(pa, margin=-margin_mm / img_a.spacing.min())
                  & img_b.contains_world(pb, margin=-margin_mm / img_b.spacing.min()))
            cases.append(LandmarkCase(
                f'{mod_a}->{mod_b}/{k}', img_a, img_b, pa[ok], pb[ok],
                names=[nm for nm, o in zip(names, ok) if o],
                meta=dict(kind='cross_subject', template_seed=sa, target_seed=sb,
                          modalities=[mod_a, mod_b])))
    return cases


@dataclass
class LesionCase:
    """A longitudinal pair: ``template`` (baseline) and ``target`` (deformed follow-up) with
    DLT records (one per lesion) whose voxel values refer to these two images."""

    name: str
    template: MedicalImage
    target: MedicalImage
    records: list
    deformation: RandomDeformation = None


def _regrow_lesions(labels: np.ndarray, image: MedicalImage, lesions, lesion_label: int,
                    factors: np.ndarray) -> np.ndarray:
    """Label map with every lesion removed (filled by the nearest other label) and redrawn
    as a ball of ``radius * factor`` (only over non-background labels)."""
    from scipy import ndimage
    out = labels.copy()
    is_lesion = out == lesion_label
    if is_lesion.any():
        _, nearest = ndimage.distance_transform_edt(is_lesion, return_indices=True)
        out[is_lesion] = out[tuple(ix[is_lesion] for ix in nearest)]
    for (centre, radius), f in zip(lesions, factors):
        r = radius * f
        idx = image.world_to_array_index(np.asarray(centre, dtype=np.float64))
        half = r / image.spacing[::-1] + 1
        lo = np.maximum(np.floor(idx - half).astype(int), 0)
        hi = np.minimum(np.ceil(idx + half).astype(int) + 1, out.shape)
        if np.any(hi <= lo):
            continue
        sl = tuple(slice(a, b) for a, b in zip(lo, hi))
        pts = np.moveaxis(np.indices(tuple(hi - lo)), 0, -1) + lo  # (z, y, x) indices
        world = image.array_index_to_world(pts)
        ball = np.linalg.norm(world - np.asarray(centre), axis=-1) <= r
        region = out[sl]
        region[ball & (region != 0)] = lesion_label
    return out


def lesion_box_voxels(image: MedicalImage, centre_mm, radius_mm: float,
                      deformation: Optional[RandomDeformation] = None):
    """Box ``[x, y, z, w, h, d]`` (voxels of ``image``), centre (voxels) and RECIST-like
    diameters ``[long, short]`` (pixels) of a ball of ``radius_mm`` at ``centre_mm`` in the
    template; with ``deformation``, of its image in the target (the ball's 26 axis and
    diagonal extreme points mapped through the exact inverse)."""
    dirs = np.array(np.meshgrid([-1, 0, 1], [-1, 0, 1], [-1, 0, 1], indexing='ij'))
    dirs = dirs.reshape(3, -1).T
    dirs = dirs[np.any(dirs != 0, axis=1)].astype(np.float64)
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    centre = np.asarray(centre_mm, dtype=np.float64).reshape(1, 3)
    pts = np.concatenate([centre, centre + radius_mm * dirs])
    if deformation is not None:
        pts = deformation.template_to_target(pts)
    vox = image.world_to_index(pts)
    lo, hi = vox.min(0), vox.max(0)
    box = np.concatenate([lo, hi - lo])
    size_mm = (hi - lo) * image.spacing
    long_mm, short_mm = max(size_mm[0], size_mm[1]), min(size_mm[0], size_mm[1])
    diam = np.array([long_mm, short_mm]) / image.spacing[0]
    return box, vox[0], diam


def longitudinal_lesion_cases(n_cases: int = 2, spacing: float = 2.0, seed: int = 0,
                              out_dir: Optional[str] = None, growth=(0.6, 1.5),
                              n_lesions: int = 3, **deform_kwargs) -> List[LesionCase]:
    """Benchmark 3: synthetic longitudinal CT pairs with grown/shrunk lesions.

    Subject ``seed + k`` (with ``n_lesions`` lesions) is rendered as the baseline (template);
    its follow-up has every lesion radius multiplied by ``U(growth)``, is rendered with the
    same tissue values and then deformed (:func:`deform_case`: random affine + smooth warp,
    FOV cut, intensity change). One DLT record per lesion whose centre lies inside both
    images; subjects without such a lesion are skipped (up to ``5 * n_cases`` subjects are
    tried). With ``out_dir``, the images are written there as ``case{k}_baseline.nii.gz`` /
    ``case{k}_followup.nii.gz`` together with ``test.json`` (DLT layout), so that
    ``tools/eval_lesion_tracking.py`` can evaluate predictions.
    """
    from ..datasets.synthetic import generate_subject
    from ..datasets.synthetic.anatomy import STRUCTURE_BY_NAME
    from .dlt_format import LesionPair, write_dlt_json
    lesion_label = STRUCTURE_BY_NAME['lesion'].label
    cases, all_records = [], []
    for k in range(5 * n_cases):
        if len(cases) >= n_cases:
            break
        rng = np.random.default_rng([seed, k, 3])
        subj = generate_subject(seed + k, spacing=spacing, lesions=n_lesions)
        lesions = list(subj.lesions)
        if not lesions:
            continue
        render_seed = int(rng.integers(1 << 31))
        contrast = bool(rng.uniform() < 0.5)
        base = _render(subj, 'CT', np.random.default_rng(render_seed), contrast=contrast)
        factors = rng.uniform(growth[0], growth[1], size=len(lesions))
        labels2 = _regrow_lesions(subj.labels.array, subj.labels, lesions, lesion_label,
                                  factors)
        follow_subj = replace(subj, labels=subj.labels.with_array(labels2),
                              lesions=[(c, r * f) for (c, r), f in zip(lesions, factors)])
        follow = _render(follow_subj, 'CT', np.random.default_rng(render_seed),
                         contrast=contrast)
        case, deformation = deform_case(follow, rng, n_points=0, name=f'case{k}',
                                        **deform_kwargs)
        target = case.target
        src_name, tgt_name = f'case{k}_baseline.nii.gz', f'case{k}_followup.nii.gz'
        records = []
        for j, ((centre, radius), f) in enumerate(zip(lesions, factors)):
            if not base.contains_world(np.asarray(centre)[None], margin=-1.0)[0]:
                continue
            sbox, scen, sdiam = lesion_box_voxels(base, centre, radius)
            tbox, tcen, tdiam = lesion_box_voxels(target, centre, radius * f, deformation)
            if not (np.all(tcen >= 1) and np.all(tcen <= target.size - 2)):
                continue
            records.append(LesionPair(
                key=f'{k:03d}{j:02d}', source=src_name, target=tgt_name,
                source_center=scen, target_center=tcen, source_spacing=base.spacing,
                target_spacing=target.spacing, source_box=sbox, target_box=tbox,
                source_diameter=sdiam, target_diameter=tdiam,
                extra={'growth factor': float(f), 'subject seed': int(seed + k)}))
        if not records:
            continue
        cases.append(LesionCase(f'case{k}', base, target, records, deformation))
        all_records += records
    if out_dir is not None and cases:
        from ..fileio import write_image
        os.makedirs(out_dir, exist_ok=True)
        for case in cases:
            write_image(case.template, osp.join(out_dir, case.records[0].source))
            write_image(case.target, osp.join(out_dir, case.records[0].target))
        write_dlt_json(all_records, osp.join(out_dir, 'test.json'))
    return cases


def ct_mr_registration_cases(n_cases: int = 2, spacing: float = 4.0, seed: int = 0,
                             n_body_points: int = 30, mr_presets: Sequence[str] = ('T1', 'T2'),
                             z_range=(250.0, 570.0), edge_margin_mm: float = 8.0,
                             max_rotation_deg: float = 8.0, max_translation_mm: float = 15.0,
                             max_displacement_mm: float = 8.0, max_scale: float = 0.0
                             ) -> List[LandmarkCase]:
    """UAE-M cases: the CT of a synthetic subject (template) and the MR of the SAME subject
    moved by a known rigid + smooth deformation (target), as if scanned on another day.

    Subject ``seed + k`` is rendered as CT and as MR (preset ``mr_presets[k % len]``) on one
    grid; the MR is then warped by :func:`random_deformation` (rotation, translation, smooth
    displacement; no scaling by default: same patient) onto a slightly cut field of view.
    Points: the named landmarks plus ``n_body_points`` random body points of the CT, with
    their exact positions in the moved MR; only points at least ``edge_margin_mm`` inside the
    MR are kept. ``meta['deformation']`` is the :class:`RandomDeformation` (MR -> moved MR).
    """
    from ..datasets.synthetic import generate_subject
    cases = []
    for k in range(int(n_cases)):
        s = int(seed) + k
        subj = generate_subject(s, spacing=spacing, z_range=z_range)
        rng = np.random.default_rng([int(seed), s, 3])
        ct = _render(subj, 'CT', rng)
        preset = mr_presets[k % len(mr_presets)]
        mr = _render(subj, 'MR', rng, preset=preset)
        deformation = random_deformation(mr, rng, max_rotation_deg=max_rotation_deg,
                                         max_scale=max_scale,
                                         max_translation_mm=max_translation_mm,
                                         max_displacement_mm=max_displacement_mm)
        grid = _target_grid(mr, rng, (0.05, 0.05, 0.1), 0.0)
        moved = warp_image(mr, deformation, grid, default_value=float(mr.array.min()))
        names = list(subj.landmarks.names)
        pts = np.array([subj.landmarks[nm] for nm in names]).reshape(-1, 3)
        body = sample_body_points(ct, n_body_points, rng)
        pts = np.concatenate([pts, body])
        names = names + [f'body{i}' for i in range(len(body))]
        gt = deformation.template_to_target(pts)
        margin = edge_margin_mm / moved.spacing
        idx = moved.world_to_index(gt)
        ok = np.all((idx >= margin) & (idx <= moved.size - 1 - margin), axis=1)
        ok &= ct.contains_world(pts, margin=-edge_margin_mm / ct.spacing.min())
        cases.append(LandmarkCase(
            f'CT->MR/{k}', ct, moved, pts[ok], gt[ok],
            names=[nm for nm, o in zip(names, ok) if o],
            meta=dict(kind='ct_mr_registration', seed=s, mr_preset=preset,
                      deformation=deformation)))
    return cases
