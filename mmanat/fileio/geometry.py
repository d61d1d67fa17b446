"""Geometry validation: the one check every image reader makes before returning an image.

:func:`check_geometry` refuses a spacing that is zero, negative or not a number, an origin
that is not finite, and a direction (orientation) matrix that is not finite or singular,
whatever the format. ITK already refuses some of these while reading (.mha/.nrrd with a zero
spacing); others it lets through or silently replaces:

* a NIfTI ``pixdim`` of 0 or NaN becomes 1 mm (NIfTI-1 standard, ``nifti1.h``: "pixdim[i]
  = voxel width along dimension #i", and ITK's NiftiImageIO falls back to 1 for
  unusable values), so a scan is then read in the wrong geometry without a word;
* a NaN in the sform rows (``srow_x/y/z``) becomes a NaN direction matrix;
* NaN quaternion parameters of the qform.

:func:`check_nifti_header` therefore reads the NIfTI header itself (nibabel, no value
repair) and refuses these before ITK's answer is used.
"""
from __future__ import annotations

import gzip
import zlib
from typing import Optional, Sequence

import numpy as np

from ..utils.exceptions import InvalidInputError

__all__ = ['check_geometry', 'check_nifti_header', 'nifti_header_problem']

_HEADER_FIX = ('fix the header (e.g. nibabel: img.header.set_zooms(...) / img.set_sform(...)) '
               'or re-export the scan from its source')


def check_geometry(path: str, spacing: Sequence[float], origin: Sequence[float],
                   direction: np.ndarray) -> None:
    """Refuse an image geometry that would put voxels at wrong or undefined positions.

    Args:
        path: the file (for the message).
        spacing, origin: ITK order ``(x, y[, z])``, mm.
        direction: the ``(d, d)`` direction matrix (columns: axis directions).

    Raises:
        InvalidInputError: naming the file, the bad values and how to fix them.
    """
    spacing = np.asarray(spacing, dtype=np.float64)
    if not (np.all(np.isfinite(spacing)) and np.all(spacing > 0)):
        raise InvalidInputError(
            f'{path}: voxel spacing {spacing.tolist()} mm (x, y[, z]) is zero, negative or not '
            f'a number; every value must be finite and > 0: {_HEADER_FIX}.')
    origin = np.asarray(origin, dtype=np.float64)
    if not np.all(np.isfinite(origin)):
        raise InvalidInputError(f'{path}: origin {origin.tolist()} mm is not finite; '
                                f'{_HEADER_FIX}.')
    direction = np.asarray(direction, dtype=np.float64)
    if not np.all(np.isfinite(direction)) or abs(np.linalg.det(direction)) < 1e-6:
        raise InvalidInputError(
            f'{path}: direction (orientation) matrix {np.round(direction, 4).tolist()} is not '
            f'finite or is singular; {_HEADER_FIX}.')


def nifti_header_problem(hdr: bytes) -> Optional[str]:
    """What is wrong with the geometry of a NIfTI-1/-2 header, ``None`` when nothing is.

    Args:
        hdr: the first bytes of the (decompressed) file.

    Returns:
        A description of the first problem: a spatial ``pixdim`` that is zero or not finite,
        non-finite qform parameters (``qform_code > 0``), or non-finite or singular sform
        rows (``sform_code > 0``).
    """
    import struct

    import nibabel as nib
    for klass in (nib.Nifti1Header, nib.Nifti2Header):
        size = klass.template_dtype.itemsize
        if len(hdr) < size:
            continue
        for endian in '<>':
            if struct.unpack(endian + 'i', hdr[:4])[0] != size:
                continue
            try:
                h = klass(hdr[:size], endianness=endian, check=False)
                ndim = int(h['dim'][0])
                pixdim = np.asarray(h['pixdim'], dtype=np.float64)
                qcode, scode = int(h['qform_code']), int(h['sform_code'])
                quat = np.array([h['quatern_b'], h['quatern_c'], h['quatern_d'],
                                 h['qoffset_x'], h['qoffset_y'], h['qoffset_z']], np.float64)
                srow = np.stack([h['srow_x'], h['srow_y'], h['srow_z']]).astype(np.float64)
            except Exception:  # noqa: BLE001 - nibabel raises several types on nonsense
                return None
            spatial = pixdim[1:1 + max(1, min(ndim, 3))]
            if not (np.all(np.isfinite(spatial)) and np.all(spatial != 0)):
                return (f'its voxel spacing pixdim[1:{1 + len(spatial)}] = '
                        f'{[float(v) for v in spatial]} is zero or not a number (ITK would '
                        'read it as 1 mm)')
            if qcode > 0 and not np.all(np.isfinite(quat)):
                return f'its qform (quatern_b/c/d, qoffset_x/y/z = {quat.tolist()}) is not finite'
            if scode > 0:
                lin = srow[:min(max(ndim, 1), 3), :min(max(ndim, 1), 3)]
                if not np.all(np.isfinite(srow)):
                    return f'its sform rows srow_x/y/z {srow.tolist()} are not finite'
                if ndim >= 3 and abs(np.linalg.det(srow[:, :3])) < 1e-12 or \
                        (ndim < 3 and not np.any(lin)):
                    return f'its sform rows srow_x/y/z {srow.tolist()} are singular'
            return None
    return None


def check_nifti_header(path: str) -> None:
    """Raise when the NIfTI file ``path`` declares an unusable geometry (see
    :func:`nifti_header_problem`); an unreadable header is left to the truncation check."""
    try:
        with (gzip.open(path, 'rb') if path.lower().endswith('.gz') else open(path, 'rb')) as f:
            hdr = f.read(544)
    except (OSError, EOFError, zlib.error):
        return
    problem = nifti_header_problem(hdr)
    if problem:
        raise InvalidInputError(f'{path}: invalid NIfTI geometry: {problem}; {_HEADER_FIX}.')
