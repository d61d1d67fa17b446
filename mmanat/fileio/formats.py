"""File formats: THE list of image/volume file extensions and file-name stems.

Every place that needs to know what a volume file is called (folder scans, subject ids,
output names) uses this module, so the list is written down once:

* :data:`VOLUME_EXTENSIONS`: single-file 3D volumes (NIfTI, NRRD, MetaImage), what a folder
  scan picks up as volumes.
* :data:`DICOM_EXTENSIONS`, :data:`BITMAP_EXTENSIONS` (PNG, JPEG): DICOM files, plain
  pictures; together the :data:`PICTURE_EXTENSIONS` (formats that hold only 2D pictures).
* :data:`SUPPORTED_EXTENSIONS`: everything :func:`mmanat.fileio.read_image` reads.
* :data:`CACHE_EXTENSIONS`: the ``.npy`` arrays of ``tools/preprocess.py``.
* :data:`KNOWN_EXTENSIONS`: all of the above; what :func:`split_extension` strips.

Extensions are lower case with the leading dot; matching is case-insensitive and the longest
extension wins (``'.nii.gz'`` before ``'.gz'``).
"""
from __future__ import annotations

import os
import os.path as osp
from typing import Dict, Optional, Sequence, Tuple, Union

PathLike = Union[str, os.PathLike]

__all__ = [
    'VOLUME_EXTENSIONS', 'NIFTI_EXTENSIONS', 'DICOM_EXTENSIONS', 'BITMAP_EXTENSIONS',
    'PICTURE_EXTENSIONS',
    'SUPPORTED_EXTENSIONS', 'CACHE_EXTENSIONS', 'KNOWN_EXTENSIONS', 'READ_IMAGE_IO',
    'WRITE_IMAGE_IO', 'split_extension', 'strip_extension', 'filename_stem',
    'image_extension', 'is_volume_file'
]

#: extension -> SimpleITK ImageIO used to read it (the order is the order users see)
READ_IMAGE_IO: Dict[str, str] = {
    '.nii.gz': 'NiftiImageIO',
    '.nii': 'NiftiImageIO',
    '.nrrd': 'NrrdImageIO',
    '.nhdr': 'NrrdImageIO',
    '.mha': 'MetaImageIO',
    '.mhd': 'MetaImageIO',
    '.dcm': 'GDCMImageIO',
    '.dicom': 'GDCMImageIO',
    '.png': 'PNGImageIO',
    '.jpg': 'JPEGImageIO',
    '.jpeg': 'JPEGImageIO',
}
#: extension -> SimpleITK ImageIO used to write it (no DICOM, no detached NRRD header)
WRITE_IMAGE_IO: Dict[str, str] = {
    k: v for k, v in READ_IMAGE_IO.items() if k not in ('.dcm', '.dicom', '.nhdr')
}

#: single-file 3D volumes: what a folder scan takes for a volume
VOLUME_EXTENSIONS: Tuple[str, ...] = ('.nii.gz', '.nii', '.nrrd', '.nhdr', '.mha', '.mhd')
#: NIfTI-1/-2 files (checked for truncation after reading)
NIFTI_EXTENSIONS: Tuple[str, ...] = ('.nii.gz', '.nii')
#: DICOM files (a folder of them is one series)
DICOM_EXTENSIONS: Tuple[str, ...] = ('.dcm', '.dicom')
#: plain pictures: no geometry in the file (pixel spacing unknown)
BITMAP_EXTENSIONS: Tuple[str, ...] = ('.png', '.jpg', '.jpeg')
#: formats that only hold 2D pictures (a single slice read from them is 2D)
PICTURE_EXTENSIONS: Tuple[str, ...] = DICOM_EXTENSIONS + BITMAP_EXTENSIONS
#: every extension :func:`mmanat.fileio.read_image` reads
SUPPORTED_EXTENSIONS: Tuple[str, ...] = tuple(READ_IMAGE_IO)
#: array caches written by ``tools/preprocess.py`` (read by the ``LoadVolume`` transform)
CACHE_EXTENSIONS: Tuple[str, ...] = ('.npy', )
#: every extension :func:`split_extension` recognises
KNOWN_EXTENSIONS: Tuple[str, ...] = SUPPORTED_EXTENSIONS + CACHE_EXTENSIONS

assert set(VOLUME_EXTENSIONS + DICOM_EXTENSIONS + PICTURE_EXTENSIONS) \
    == set(SUPPORTED_EXTENSIONS)


def split_extension(path: PathLike,
                    extensions: Optional[Sequence[str]] = None) -> Tuple[str, str]:
    """Split a known extension off a path.

    Args:
        path: a file path or name; folders in it are kept.
        extensions: the extensions to recognise (lower case, with the dot); default
            :data:`KNOWN_EXTENSIONS`. The longest matching one wins.

    Returns:
        ``(root, ext)`` with ``root + ext == path``; ``ext`` is lower case, or ``''`` when
        the path ends in none of the extensions (then ``root`` is the whole path).
        ``'a/b/lung1.nii.gz'`` -> ``('a/b/lung1', '.nii.gz')``.
    """
    path = os.fspath(path)
    low = path.lower()
    exts = KNOWN_EXTENSIONS if extensions is None else extensions
    for ext in sorted(exts, key=len, reverse=True):
        if ext and low.endswith(ext):
            return path[:-len(ext)], ext.lower()
    return path, ''


def strip_extension(path: PathLike, extensions: Optional[Sequence[str]] = None) -> str:
    """``path`` without its known extension, folders kept: ``'a/b/lung1.nii.gz'`` ->
    ``'a/b/lung1'`` (see :func:`split_extension`; unknown extensions stay)."""
    return split_extension(path, extensions)[0]


def filename_stem(path: PathLike, extensions: Optional[Sequence[str]] = None) -> str:
    """The file (or folder) name without folders and without its known extension.

    Args:
        path: a file or folder path; a trailing separator is ignored.
        extensions: as in :func:`split_extension`.

    Returns:
        ``'a/b/lung1.nii.gz'`` -> ``'lung1'``; ``'scans/series_3/'`` -> ``'series_3'``.
    """
    return strip_extension(osp.basename(osp.normpath(os.fspath(path))), extensions)


def image_extension(path: PathLike) -> str:
    """The lower-case image extension of ``path``: a :data:`SUPPORTED_EXTENSIONS` entry, or
    for an unsupported file its last ``.suffix`` (``''`` when it has none), e.g. for error
    messages."""
    ext = split_extension(path, SUPPORTED_EXTENSIONS)[1]
    return ext or osp.splitext(os.fspath(path).lower())[1]


def is_volume_file(name: PathLike) -> bool:
    """Whether ``name`` ends in one of :data:`VOLUME_EXTENSIONS` (case-insensitive)."""
    return os.fspath(name).lower().endswith(VOLUME_EXTENSIONS)
