"""Images and similarity maps as in-memory NIfTI-1 files for the browser viewer (NiiVue).

NiiVue (https://github.com/niivue/niivue) reads NIfTI and shows world coordinates in the
NIfTI convention, RAS mm. mmanat works in LPS mm (ITK / DICOM / 3D Slicer); the two differ by
the sign of x and y. Every volume sent to the page carries the exact ITK geometry of its image
(:attr:`~mmanat.structures.grid.GridMixin.affine`, index -> LPS) turned into a RAS sform, so a
click in the page converts back to the same LPS point the Python API uses. A 2D image (a
radiograph) becomes a one-slice volume in the plane z = 0.
"""
from __future__ import annotations

from typing import Dict, Optional, Tuple

import numpy as np

#: LPS <-> RAS: negate x and y (homogeneous 4 x 4)
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])

#: window presets (lower, upper) in image units; ``None`` = the image's robust range
WINDOW_PRESETS: Dict[str, Optional[Tuple[float, float]]] = {
    'lung': (-1350.0, 150.0),    # width 1500, level -600 HU
    'soft': (-160.0, 240.0),     # width 400, level 40 HU
    'bone': (-450.0, 1050.0),    # width 1500, level 300 HU
    'auto': None,                # MR / radiographs: 0.5 - 99.5 percentiles
}


def affine_3d(affine: np.ndarray) -> np.ndarray:
    """A 3 x 3 (2D image) or 4 x 4 homogeneous index -> LPS matrix as 4 x 4 (a 2D image's
    plane is z = 0 with a unit slice thickness)."""
    affine = np.asarray(affine, dtype=np.float64)
    if affine.shape == (4, 4):
        return affine.copy()
    if affine.shape != (3, 3):
        raise ValueError(f'expected a 3 x 3 or 4 x 4 affine, got {affine.shape}')
    out = np.eye(4)
    out[:2, :2] = affine[:2, :2]
    out[:2, 3] = affine[:2, 2]
    return out


def ras_affine(affine_lps: np.ndarray) -> np.ndarray:
    """The NIfTI (RAS) sform of an ITK index -> LPS affine (3 x 3 for 2D images or 4 x 4)."""
    return LPS_TO_RAS @ affine_3d(affine_lps)


def nifti_bytes(array_zyx: np.ndarray, affine_lps: np.ndarray,
                dtype: Optional[str] = None) -> bytes:
    """An uncompressed NIfTI-1 file (bytes) of a numpy-order array and its ITK geometry.

    Args:
        array_zyx: ``(z, y, x)`` volume or ``(y, x)`` 2D image (numpy order, as
            :class:`~mmanat.structures.MedicalImage` stores it).
        affine_lps: homogeneous ITK index ``(i, j[, k])`` -> LPS mm matrix (4 x 4, or 3 x 3
            for 2D).
        dtype: storage type (default: int16 / uint8 / uint16 / float32 kept, anything else
            float32).

    Returns:
        bytes: a ``.nii`` file whose sform and qform map voxels to RAS mm.
    """
    import nibabel as nib
    arr = np.asarray(array_zyx)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3:
        raise ValueError(f'expected a 2D or 3D array, got shape {arr.shape}')
    keep = ('int16', 'uint8', 'uint16', 'float32', 'int8')
    dtype = dtype or (arr.dtype.name if arr.dtype.name in keep else 'float32')
    data = np.asarray(arr.transpose(2, 1, 0), dtype=dtype)  # NIfTI order i, j, k
    aff = ras_affine(affine_lps)
    img = nib.Nifti1Image(data, aff)
    img.header.set_xyzt_units('mm')
    img.header.set_sform(aff, code=1)
    img.header.set_qform(aff, code=1)
    return img.to_bytes()


def image_nifti(image) -> bytes:
    """The NIfTI-1 bytes of a :class:`~mmanat.structures.MedicalImage` (3D or 2D)."""
    return nifti_bytes(image.array, image.affine)


def robust_range(array: np.ndarray, low: float = 0.5, high: float = 99.5,
                 max_samples: int = 2_000_000) -> Tuple[float, float]:
    """Percentile window ``(low, high)`` of an image (a strided subsample when it is large)."""
    flat = np.asarray(array).reshape(-1)
    if flat.size > max_samples:
        flat = flat[::int(np.ceil(flat.size / max_samples))]
    lo, hi = np.percentile(flat.astype(np.float32), [low, high])
    if hi <= lo:
        hi = lo + 1.0
    return float(lo), float(hi)


def default_window(modality: Optional[str]) -> str:
    """The preset the page starts with: soft tissue for CT, the robust range otherwise."""
    return 'soft' if (modality or '').upper() == 'CT' else 'auto'
