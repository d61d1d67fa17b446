"""Reorientation and resampling of :class:`MedicalImage` that keep world coordinates exact.

All three functions use SimpleITK; they change the voxel grid, never the physical position of
the anatomy: a world point (LPS mm) names the same anatomy before and after.
"""
from __future__ import annotations

from typing import Optional, Sequence, Union

import numpy as np

from ..utils.exceptions import InvalidInputError
from .image import MedicalImage

_INTERPOLATORS = ('linear', 'nearest', 'bspline')
_ORIENT_PAIRS = ({'L', 'R'}, {'P', 'A'}, {'S', 'I'})


def _interpolator(name: str):
    import SimpleITK as sitk
    key = str(name).lower()
    table = {'linear': sitk.sitkLinear, 'nearest': sitk.sitkNearestNeighbor,
             'bspline': sitk.sitkBSpline}
    if key not in table:
        raise InvalidInputError(
            f'unknown interpolation {name!r}; use one of {_INTERPOLATORS} ("nearest" for '
            'label maps).')
    return key, table[key]


def _output_pixel_type(image: MedicalImage, interp: str):
    """Nearest keeps the dtype; linear/bspline give float32 for integer inputs (float64
    stays float64), so interpolated values are not truncated."""
    import SimpleITK as sitk
    dtype = image.array.dtype
    if interp == 'nearest' or dtype in (np.float32, np.float64):
        return sitk.sitkUnknown  # same as the input
    return sitk.sitkFloat32


def _default_value(image: MedicalImage, default_value: Optional[float]) -> float:
    if default_value is not None:
        return float(default_value)
    # the darkest value: air in CT (-1024), background in MR, label 0 in label maps
    return float(image.array.min()) if image.array.size else 0.0


def _from_sitk_like(img, image: MedicalImage) -> MedicalImage:
    out = MedicalImage.from_sitk(img, modality=image.modality, path=image.path,
                                 meta=dict(image.meta))
    if image.array.dtype == np.bool_ and out.array.dtype == np.uint8:
        out.array = out.array.astype(bool)
    return out


def reorient(image: MedicalImage, orientation: str = 'LPS') -> MedicalImage:
    """Permute/flip the voxel axes so that they point (as closely as the scan allows) along
    ``orientation``, without resampling (SimpleITK ``DICOMOrient``).

    ``'LPS'`` (default) means index i increases towards the patient's Left, j towards
    Posterior, k towards Superior: the direction matrix becomes the identity for a
    non-oblique scan. The world position of every voxel is unchanged.

    Args:
        image: a 3D image.
        orientation: three letters, one of each pair L/R, P/A, S/I (e.g. ``'RAS'``).
    """
    import SimpleITK as sitk
    code = str(orientation).upper()
    if (len(code) != 3 or any(sum(c in pair for c in code) != 1 for pair in _ORIENT_PAIRS)):
        raise InvalidInputError(
            f'orientation {orientation!r} is not valid; give three letters with one of each '
            'pair L/R, P/A, S/I, e.g. "LPS" or "RAS".')
    if image.ndim != 3:
        raise InvalidInputError(
            f'{image.path or "<in-memory image>"}: reorient needs a 3D volume, got a '
            f'{image.ndim}D image.')
    out = sitk.DICOMOrient(image.to_sitk(), code)
    return _from_sitk_like(out, image)


def resample_to_spacing(image: MedicalImage, spacing: Union[float, Sequence[float]] = 2.0,
                        interpolation: str = 'linear',
                        default_value: Optional[float] = None) -> MedicalImage:
    """Resample onto a grid of ``spacing`` mm with the same direction and physical extent.

    The new grid has ``round(size * old_spacing / spacing)`` voxels per axis (at least 1) and
    the same centre as the old one, so its extent (``size * spacing``) differs from the old by
    less than one new voxel.

    Args:
        image: 2D or 3D image.
        spacing: new voxel size in mm, one value (isotropic) or ITK order ``(x, y[, z])``.
        interpolation: ``'linear'`` for images, ``'nearest'`` for label maps (keeps the
            dtype and the label values), or ``'bspline'``. Linear/B-spline turn integer images
            into float32.
        default_value: value outside the input; default: the image minimum.
    """
    import SimpleITK as sitk
    new_spacing = np.asarray(spacing, dtype=np.float64).reshape(-1)
    if new_spacing.size == 1:
        new_spacing = np.repeat(new_spacing, image.ndim)
    if (new_spacing.size != image.ndim or not np.all(np.isfinite(new_spacing))
            or np.any(new_spacing <= 0)):
        raise InvalidInputError(
            f'target spacing {np.asarray(spacing).tolist()} mm is invalid; give one or '
            f'{image.ndim} finite values > 0 (ITK order x, y[, z]).')
    interp, sitk_interp = _interpolator(interpolation)
    old_size = image.size.astype(np.float64)
    new_size = np.maximum(1, np.rint(old_size * image.spacing / new_spacing)).astype(np.int64)
    # keep the grid centre: centre = origin + D (spacing * (size - 1) / 2)
    centre = image.index_to_world((old_size - 1) / 2)
    new_origin = centre - image.direction @ (new_spacing * (new_size - 1) / 2)
    out = sitk.Resample(
        image.to_sitk(), [int(v) for v in new_size], sitk.Transform(), sitk_interp,
        [float(v) for v in new_origin], [float(v) for v in new_spacing],
        [float(v) for v in image.direction.reshape(-1)], _default_value(image, default_value),
        _output_pixel_type(image, interp))
    return _from_sitk_like(out, image)


def _as_transform(transform, ndim: int):
    import SimpleITK as sitk
    if transform is None:
        return sitk.Transform()
    if isinstance(transform, sitk.Transform):
        return transform
    mat = np.asarray(transform, dtype=np.float64)
    if mat.shape != (ndim + 1, ndim + 1) or not np.all(np.isfinite(mat)):
        raise InvalidInputError(
            f'transform must be a SimpleITK Transform or a {ndim + 1}x{ndim + 1} homogeneous '
            f'matrix (world LPS mm), got shape {mat.shape}.')
    aff = sitk.AffineTransform(ndim)
    aff.SetMatrix([float(v) for v in mat[:ndim, :ndim].reshape(-1)])
    aff.SetTranslation([float(v) for v in mat[:ndim, ndim]])
    return aff


def resample_to_reference(image: MedicalImage, reference: MedicalImage,
                          interpolation: str = 'linear', transform=None,
                          default_value: Optional[float] = None) -> MedicalImage:
    """Resample ``image`` onto the voxel grid of ``reference`` (size, spacing, origin,
    direction); modality and metadata stay those of ``image``.

    Args:
        image: image to resample.
        reference: image whose grid the output takes (only its geometry is used).
        interpolation: ``'linear'``, ``'nearest'`` (label maps) or ``'bspline'``.
        transform: optional map from world points of the reference grid to world points of
            ``image`` (the ITK convention): a ``SimpleITK.Transform`` or an
            ``(ndim+1)x(ndim+1)`` homogeneous matrix in LPS mm. ``None``: identity.
        default_value: value outside the input; default: the image minimum.
    """
    import SimpleITK as sitk
    if image.ndim != reference.ndim:
        raise InvalidInputError(
            f'cannot resample a {image.ndim}D image ({image.path}) onto a {reference.ndim}D '
            f'reference ({reference.path}).')
    interp, sitk_interp = _interpolator(interpolation)
    ref = sitk.Image([int(v) for v in reference.size], sitk.sitkUInt8)
    ref.SetSpacing([float(v) for v in reference.spacing])
    ref.SetOrigin([float(v) for v in reference.origin])
    ref.SetDirection([float(v) for v in reference.direction.reshape(-1)])
    out = sitk.Resample(image.to_sitk(), ref, _as_transform(transform, image.ndim), sitk_interp,
                        _default_value(image, default_value), _output_pixel_type(image, interp))
    return _from_sitk_like(out, image)
