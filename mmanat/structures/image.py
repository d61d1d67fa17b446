"""A medical image (2D radiograph or 3D volume) that carries its full physical geometry.

Conventions (see docs/en/user_guides/coordinates_and_io.md):

* ``array`` is stored in numpy order, i.e. ``(z, y, x)`` for a volume and ``(y, x)`` for a 2D
  image (torch: ``N, C, D, H, W``).
* ``spacing``, ``origin`` and ``direction`` follow ITK order, ``(x, y, z)``: the world point of
  the continuous ITK index ``(i, j, k)`` is ``origin + direction @ (spacing * (i, j, k))``.
* World coordinates are millimetres in the LPS convention of DICOM/ITK/3D Slicer.

Every conversion between voxel indices and world millimetres goes through
:meth:`MedicalImage.index_to_world` / :meth:`MedicalImage.world_to_index`, so any orientation
and any origin are handled exactly.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Sequence

import numpy as np

from ..utils.exceptions import InvalidInputError
from .grid import GridMixin

MODALITIES = ('CT', 'MR', 'XR', 'OT')


def _as_float_vector(value, ndim: int, what: str, source: str) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64).reshape(-1)
    if arr.size == 1:
        arr = np.repeat(arr, ndim)
    if arr.size != ndim:
        raise InvalidInputError(
            f'{source}: {what} has {arr.size} values {arr.tolist()}, expected {ndim} '
            f'(ITK order x, y[, z]).')
    return arr


@dataclass
class MedicalImage(GridMixin):
    """An image array with its physical geometry.

    Args:
        array: pixel data, ``(z, y, x)`` for 3D or ``(y, x)`` for 2D.
        spacing: voxel size in mm, ITK order ``(x, y[, z])``.
        origin: world position (LPS mm) of the centre of voxel index 0.
        direction: ``ndim x ndim`` matrix whose columns are the world directions of the index
            axes ``i, j[, k]``.
        modality: ``'CT'``, ``'MR'``, ``'XR'`` (radiograph), ``'OT'`` (other) or ``None``.
        path: the file it came from, if any (used in error messages).
        meta: free-form metadata (DICOM tags, intensity windows, ...).
    """

    array: np.ndarray
    spacing: Sequence[float] = None
    origin: Sequence[float] = None
    direction: Any = None
    modality: Optional[str] = None
    path: Optional[str] = None
    meta: Dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        self.array = np.asarray(self.array)
        ndim = self.array.ndim
        src = self.path or '<in-memory image>'
        if ndim not in (2, 3):
            raise InvalidInputError(
                f'{src}: image array has {ndim} dimensions with shape {self.array.shape}; '
                'mmanat handles 2D images and 3D volumes only (split 4D series first).')
        self.spacing = _as_float_vector(
            1.0 if self.spacing is None else self.spacing, ndim, 'spacing', src)
        self.origin = _as_float_vector(
            0.0 if self.origin is None else self.origin, ndim, 'origin', src)
        direction = np.eye(ndim) if self.direction is None else self.direction
        direction = np.asarray(direction, dtype=np.float64)
        if direction.size != ndim * ndim:
            raise InvalidInputError(
                f'{src}: direction has {direction.size} values, expected {ndim * ndim}.')
        self.direction = direction.reshape(ndim, ndim)
        if not np.all(np.isfinite(self.spacing)) or np.any(self.spacing <= 0):
            raise InvalidInputError(
                f'{src}: spacing {self.spacing.tolist()} mm is invalid (every value must be '
                'finite and > 0); fix the header, e.g. with SimpleITK SetSpacing.')
        if not np.all(np.isfinite(self.origin)):
            raise InvalidInputError(f'{src}: origin {self.origin.tolist()} is not finite.')
        det = np.linalg.det(self.direction) if np.all(np.isfinite(self.direction)) else 0.0
        if abs(det) < 1e-6:
            raise InvalidInputError(
                f'{src}: direction matrix {self.direction.round(6).tolist()} is singular '
                '(determinant ~0); the header is corrupt, set an orthonormal direction.')
        if self.modality is not None:
            self.modality = str(self.modality).upper()
            if self.modality not in MODALITIES:
                raise InvalidInputError(
                    f'{src}: unknown modality {self.modality!r}; use one of {MODALITIES}.')

    # ------------------------------------------------------------------ basic properties
    @property
    def ndim(self) -> int:
        return self.array.ndim

    @property
    def shape(self):
        """Array shape, numpy order ``(z, y, x)`` / ``(y, x)``."""
        return self.array.shape

    def same_geometry(self, other: 'MedicalImage', tol: float = 1e-5) -> bool:
        """True if ``other`` lies on exactly the same grid."""
        return (self.array.shape == other.array.shape
                and np.allclose(self.spacing, other.spacing, atol=tol)
                and np.allclose(self.origin, other.origin, atol=tol)
                and np.allclose(self.direction, other.direction, atol=tol))

    # ------------------------------------------------------------------ copies
    def with_array(self, array: np.ndarray, **changes) -> 'MedicalImage':
        """A new image on the same grid (unless ``changes`` say otherwise) with ``array``."""
        kwargs = dict(spacing=self.spacing.copy(), origin=self.origin.copy(),
                      direction=self.direction.copy(), modality=self.modality,
                      path=self.path, meta=copy.deepcopy(self.meta))
        kwargs.update(changes)
        return MedicalImage(array=array, **kwargs)

    def copy(self) -> 'MedicalImage':
        return self.with_array(self.array.copy())

    # ------------------------------------------------------------------ SimpleITK bridge
    def to_sitk(self):
        """Convert to a ``SimpleITK.Image`` with the same geometry (array copied)."""
        import SimpleITK as sitk
        arr = self.array
        if arr.dtype == np.bool_:
            arr = arr.astype(np.uint8)
        img = sitk.GetImageFromArray(np.ascontiguousarray(arr))
        img.SetSpacing(tuple(float(v) for v in self.spacing))
        img.SetOrigin(tuple(float(v) for v in self.origin))
        img.SetDirection(tuple(float(v) for v in self.direction.reshape(-1)))
        return img

    @classmethod
    def from_sitk(cls, img, modality=None, path=None, meta=None) -> 'MedicalImage':
        """Build from a ``SimpleITK.Image`` (scalar, 2D or 3D)."""
        import SimpleITK as sitk
        src = path or '<SimpleITK image>'
        if img.GetNumberOfComponentsPerPixel() != 1:
            raise InvalidInputError(
                f'{src}: image has {img.GetNumberOfComponentsPerPixel()} components per pixel '
                '(vector/RGB); a scalar image is required, convert it to grey first.')
        ndim = img.GetDimension()
        arr = sitk.GetArrayFromImage(img)
        return cls(array=arr, spacing=img.GetSpacing(), origin=img.GetOrigin(),
                   direction=np.asarray(img.GetDirection()).reshape(ndim, ndim),
                   modality=modality, path=path, meta=dict(meta or {}))

    def __repr__(self) -> str:
        return (f'MedicalImage(shape(zyx)={self.array.shape}, dtype={self.array.dtype}, '
                f'spacing={np.round(self.spacing, 4).tolist()}, '
                f'origin={np.round(self.origin, 3).tolist()}, modality={self.modality}, '
                f'path={self.path!r})')
