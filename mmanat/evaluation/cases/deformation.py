"""A known random deformation (affine + smooth displacement) and the warping it drives.

Direction conventions (:class:`RandomDeformation`): resampling needs, for every *target* voxel
``q``, the template position it shows, ``R(q) = A(q + d(q))`` (``d`` a smooth displacement
field, ``A`` an affine); the target image is ``template(R(q))``. A template point ``p``
therefore appears in the target at ``q = R^-1(p)``, found by a vectorised fixed-point
iteration ``q <- A^-1(p) - d(q)`` (``d`` is made contractive). The field is linear between its
grid nodes, exactly as ITK's ``DisplacementFieldTransform`` interpolates it, so the numpy
ground truth and the SimpleITK resampling agree to floating-point precision (tested by marking
a voxel and finding it where the ground truth says).

Everything works in 2D as well (a radiograph: points ``(N, 2)``, a ``(y, x, 2)`` field, a 2x2
affine); the dimension is the image's. The random draws of a 3D deformation are those of the
3D-only version, so the published 3D cases stay unchanged.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from ...structures.image import MedicalImage
from ...utils.exceptions import InvalidInputError

__all__ = ['RandomDeformation', 'random_deformation', 'random_target_grid', 'warp_image']


@dataclass
class RandomDeformation:
    """``R(q) = M (q + d(q) - c) + c + t``: target world point -> template world point.

    Attributes:
        matrix, center, translation: the affine part (ITK ``AffineTransform`` parameters).
        field: ``(z, y, x, 3)`` displacement (world mm, components x, y, z) on the grid
            ``field_origin`` / ``field_spacing`` / ``field_direction`` (ITK order); in 2D
            ``(y, x, 2)``.
    """

    matrix: np.ndarray
    center: np.ndarray
    translation: np.ndarray
    field: np.ndarray
    field_origin: np.ndarray
    field_spacing: np.ndarray
    field_direction: np.ndarray

    @property
    def ndim(self) -> int:
        """2 or 3, the dimension of the points it maps."""
        return int(np.asarray(self.matrix).shape[0])

    # ------------------------------------------------------------------ SimpleITK
    def sitk_transform(self):
        """``SimpleITK.CompositeTransform`` of ``R`` (target -> template), for resampling."""
        import SimpleITK as sitk
        aff = sitk.AffineTransform(self.ndim)
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
        """``d(q)`` at ``(N, D)`` world points, (bi/tri)linear like ITK (zero outside the
        grid)."""
        from scipy.ndimage import map_coordinates
        d = self.ndim
        q = np.asarray(q, dtype=np.float64).reshape(-1, d)
        inv = np.linalg.inv(self.field_direction * self.field_spacing[None, :])
        idx = (q - self.field_origin) @ inv.T  # (i, j[, k])
        coords = idx[:, ::-1].T  # ([k,] j, i) for a ([z,] y, x) array
        out = np.stack([map_coordinates(self.field[..., c], coords, order=1, mode='constant',
                                        cval=0.0) for c in range(d)], axis=1)
        # ITK: outside the buffer (beyond half a voxel) the displacement is zero
        size = np.array(self.field.shape[:d][::-1])
        inside = np.all((idx >= -0.5) & (idx <= size - 0.5), axis=1)
        out[~inside] = 0.0
        return out

    def target_to_template(self, q) -> np.ndarray:
        """``R(q)``: where the target point ``q`` (world mm) shows the template."""
        q = np.asarray(q, dtype=np.float64).reshape(-1, self.ndim)
        return (q + self.displacement(q) - self.center) @ self.matrix.T + self.center + \
            self.translation

    def template_to_target(self, p, tol: float = 1e-6, max_iter: int = 200) -> np.ndarray:
        """``R^-1(p)``: where the template point ``p`` (world mm) appears in the target.

        Fixed-point iteration ``q <- A^-1(p) - d(q)``; converges because the field's Lipschitz
        constant is kept below 0.5. Raises if the residual ``|R(q) - p|`` stays above 1e-3 mm.
        """
        p = np.asarray(p, dtype=np.float64).reshape(-1, self.ndim)
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
        image: the template, 3D or 2D (its extent and centre set the field grid and the
            affine centre; its dimension the deformation's).
        rng: random generator.
        max_rotation_deg: rotation angle (3D: about a random axis; 2D: in the plane),
            uniform in +-this.
        max_scale: per-axis scale uniform in ``1 +- max_scale``.
        max_translation_mm: per-axis translation uniform in +-this.
        max_displacement_mm: largest length of the smooth displacement; 0 = affine only.
        smoothness_mm: Gaussian smoothing (sigma, mm) of the random field.
        field_spacing_mm: grid spacing of the displacement field.
        margin_mm: the field grid extends this far beyond the image and tapers to zero there.
    """
    from functools import reduce

    from scipy.ndimage import gaussian_filter
    dim = image.ndim
    if dim not in (2, 3):
        raise InvalidInputError('random_deformation needs a 2D or 3D image.')
    angle = np.deg2rad(rng.uniform(-max_rotation_deg, max_rotation_deg))
    if dim == 3:
        rotation = _rotation(rng.normal(size=3), angle)
    else:
        rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    matrix = rotation @ np.diag(1.0 + rng.uniform(-max_scale, max_scale, size=dim))
    centre = image.index_to_world((image.size - 1) / 2.0)
    translation = rng.uniform(-max_translation_mm, max_translation_mm, size=dim)

    fs = float(field_spacing_mm)
    extent = (image.size - 1) * image.spacing  # along the index axes, mm
    n = np.ceil((extent + 2 * margin_mm) / fs).astype(int) + 1  # (nx, ny[, nz])
    origin = image.origin - image.direction @ np.full(dim, margin_mm)
    shape = tuple(n[::-1])
    field_arr = np.zeros(shape + (dim,))
    if max_displacement_mm > 0:
        sigma = max(smoothness_mm / fs, 0.5)
        noise = rng.standard_normal(shape + (dim,))
        for c in range(dim):
            field_arr[..., c] = gaussian_filter(noise[..., c], sigma, mode='constant')
        # taper to exactly zero over the margin (outer two nodes zero)
        ramp = []
        for ax in range(dim):  # x, y[, z]
            pos = np.arange(n[ax]) * fs - margin_mm  # mm from the image border
            dist = np.minimum(pos, extent[ax] - pos)  # >= 0 inside the image
            w = np.clip((dist + margin_mm - 2 * fs) / max(margin_mm - 2 * fs, 1e-6), 0, 1)
            ramp.append(w * w * (3 - 2 * w))  # smoothstep
        window = reduce(np.multiply, np.ix_(*ramp[::-1]))  # ([z,] y, x) outer product
        field_arr *= window[..., None]
        # rotate the field components into world axes (the noise lives on the index axes)
        field_arr = field_arr @ image.direction.T
        norm = np.linalg.norm(field_arr, axis=-1).max()
        if norm > 0:
            field_arr *= max_displacement_mm / norm
        # keep the field contractive (Lipschitz < 0.5) so the inverse exists and converges
        grads = [np.gradient(field_arr[..., c], fs) for c in range(dim)]
        lip = np.sqrt(sum(g ** 2 for gc in grads for g in gc)).max()
        if lip > 0.5:
            field_arr *= 0.5 / lip
    return RandomDeformation(matrix=matrix, center=centre, translation=translation,
                             field=field_arr, field_origin=origin,
                             field_spacing=np.full(dim, fs),
                             field_direction=image.direction.copy())


def random_target_grid(image: MedicalImage, rng, fov_cut: Sequence[float],
                       spacing_jitter: float) -> MedicalImage:
    """An empty grid covering a random sub-box of ``image``: each side cut by up to
    ``fov_cut[axis]`` of the extent (axes x, y[, z]; one value: every axis), spacing scaled by
    ``1 + U(0, spacing_jitter)`` per axis. The grid keeps ``image``'s dimension, direction and
    modality; its array is ``uint8`` zeros of shape ``([z,] y, x)``."""
    dim = image.ndim
    cut = np.asarray(fov_cut, dtype=np.float64).reshape(-1)
    cut = np.repeat(cut, dim) if cut.size == 1 else cut
    if cut.size != dim:
        raise InvalidInputError(f'fov_cut has {cut.size} values for a {dim}D image; give one '
                                f'or {dim} (axes x, y[, z]).')
    lo = rng.uniform(0, cut)
    hi = rng.uniform(0, cut)
    spacing = image.spacing * (1.0 + rng.uniform(0, spacing_jitter, size=dim))
    extent = (image.size - 1) * image.spacing
    first = lo * extent  # mm from voxel 0 along the index axes
    length = extent * np.maximum(1.0 - lo - hi, 0.2)
    size = np.maximum(np.floor(length / spacing).astype(int) + 1, 4)
    origin = image.origin + image.direction @ first
    return MedicalImage(np.zeros(tuple(size[::-1]), np.uint8), spacing=spacing, origin=origin,
                        direction=image.direction.copy(), modality=image.modality)


def warp_image(image: MedicalImage, deformation: RandomDeformation,
               reference: MedicalImage, interpolation: str = 'linear',
               default_value: Optional[float] = None) -> MedicalImage:
    """Resample ``image`` (template) onto ``reference``'s grid through ``deformation``:
    ``out(q) = image(R(q))``.

    Args:
        image: the template.
        deformation: target world point -> template world point (mm).
        reference: the target grid (e.g. from :func:`random_target_grid`).
        interpolation: ``'linear'`` (the image is resampled as float32) or ``'nearest'``.
        default_value: value outside the template (default: resample_to_reference's).

    Returns:
        the warped image on ``reference``'s grid.
    """
    from ...structures.resample import resample_to_reference
    src = image if interpolation == 'nearest' else image.with_array(
        image.array.astype(np.float32))
    return resample_to_reference(src, reference, interpolation=interpolation,
                                 transform=deformation.sitk_transform(),
                                 default_value=default_value)

