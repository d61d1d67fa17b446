"""Detecting truncated NIfTI files (``.nii``, ``.nii.gz``).

ITK reads a truncated ``.nii.gz`` without complaint (the missing voxels become 0), so after
ITK has read a NIfTI file its size is compared with what the header promises.
"""
from __future__ import annotations

import gzip
import os
import os.path as osp
import struct
import zlib
from typing import Optional, Tuple

from ..utils.exceptions import InvalidInputError

__all__ = ['nifti_layout', 'check_nifti_complete']


def nifti_layout(hdr: bytes) -> Optional[Tuple[int, int]]:
    """Where the voxels of a NIfTI-1/-2 file start and how many bytes they take.

    The header is parsed by nibabel (``Nifti1Header`` / ``Nifti2Header``), which knows both
    versions and byte orders.

    Args:
        hdr: the first bytes of the (decompressed) file, at least 348 (NIfTI-1) or 540
            (NIfTI-2); either byte order.

    Returns:
        ``(data offset, bytes of voxel data)``, or ``None`` when the header is not recognised.
    """
    import nibabel as nib
    for klass in (nib.Nifti1Header, nib.Nifti2Header):
        size = klass.template_dtype.itemsize
        if len(hdr) < size:
            continue
        for endian in '<>':
            if struct.unpack(endian + 'i', hdr[:4])[0] != size:
                continue
            try:
                header = klass(hdr[:size], endianness=endian, check=False)
                shape = header.get_data_shape()
                itemsize = header.get_data_dtype().itemsize
            except Exception:  # nibabel raises several types for a nonsense header
                return None
            count = 1
            for d in shape:
                count *= max(int(d), 1)
            # a single-file NIfTI stores voxels after the header and its 4 extension bytes
            offset = max(int(header.get_data_offset()), size + 4)
            return offset, count * itemsize
    return None


def check_nifti_complete(path: str) -> None:
    """Raise when a NIfTI file (``.nii``/``.nii.gz``) holds fewer bytes than its header
    promises.

    For ``.nii.gz`` the gzip trailer's size field is compared with header offset + voxel
    bytes, and only on a mismatch is the whole stream decompressed to be sure.

    Args:
        path: the NIfTI file.

    Raises:
        InvalidInputError: the header cannot be decompressed, or the file is truncated.
    """
    gz = path.lower().endswith('.gz')
    try:
        with (gzip.open(path, 'rb') if gz else open(path, 'rb')) as f:
            hdr = f.read(544)
    except (OSError, EOFError, zlib.error) as err:
        raise InvalidInputError(f'{path}: the NIfTI header cannot be decompressed ({err}); the '
                                'file is truncated or corrupt: re-export or re-download it.') \
            from None
    layout = nifti_layout(hdr)
    if layout is None:
        return  # a header we do not know how to size; ITK accepted it
    offset, nbytes = layout
    expected = offset + nbytes
    if not gz:
        actual = osp.getsize(path)
    else:
        with open(path, 'rb') as f:
            f.seek(-4, os.SEEK_END)
            isize = struct.unpack('<I', f.read(4))[0]
        if isize == expected % (1 << 32):
            return
        actual = 0
        try:
            with gzip.open(path, 'rb') as f:
                while True:
                    chunk = f.read(1 << 22)
                    if not chunk:
                        break
                    actual += len(chunk)
        except (OSError, EOFError, zlib.error):
            actual = -1  # the stream ends before its end marker
    if actual < expected:
        got = 'ends before the end of its compressed stream' if actual < 0 else \
            f'holds {actual} bytes'
        raise InvalidInputError(
            f'{path}: the file is truncated: it {got}, but its header needs {expected} bytes '
            f'(offset {offset} + {nbytes} bytes of voxels); re-export or re-download it.')
