"""Reading and writing medical images with their full geometry (SimpleITK underneath).

Supported inputs (the extensions are listed once, in :mod:`mmanat.fileio.formats`):

* 3D volumes: NIfTI (``.nii``, ``.nii.gz``), NRRD (``.nrrd``, ``.nhdr``), MetaImage (``.mha``,
  ``.mhd``), a folder holding one DICOM series, a single DICOM file (``.dcm``).
* 2D images: PNG, JPEG, DICOM (``.dcm``, radiographs), and 2D NRRD/MHA/NIfTI.

Every image comes back as a :class:`~mmanat.structures.MedicalImage`: the array in numpy order
``(z, y, x)`` / ``(y, x)``, the geometry (spacing, origin, direction) in ITK order ``(x, y, z)``
and world coordinates in LPS millimetres. The modality (``modality=None``) follows the rule
of :mod:`mmanat.fileio.modality`; DICOM specifics are in :mod:`mmanat.fileio.dicom`, the
truncated-NIfTI check in :mod:`mmanat.fileio.nifti_check`, the geometry checks (spacing, origin,
direction; NIfTI pixdim / qform / sform) that every read passes in :mod:`mmanat.fileio.geometry`.

Writing (:func:`write_image`) always goes to a temporary name that is renamed onto the
destination only when the write succeeded.
"""
from __future__ import annotations

import contextlib
import os
import os.path as osp
import shutil
import tempfile
from typing import Optional, Sequence, Union

import numpy as np

from ..structures.image import MedicalImage
from ..utils.exceptions import InvalidInputError
from .atomic import atomic_path, clean_folder_once, temp_prefix
from .dicom import (FILE_TAGS, XR_DICOM_MODALITIES, dicom_spacing_2d, read_dicom_series,
                    to_monochrome2)
from .geometry import check_geometry, check_nifti_header
from .formats import (BITMAP_EXTENSIONS, DICOM_EXTENSIONS, NIFTI_EXTENSIONS, PICTURE_EXTENSIONS,
                      READ_IMAGE_IO, SUPPORTED_EXTENSIONS, WRITE_IMAGE_IO, image_extension)
from .modality import MODALITY_KEY, guess_modality, resolve_modality
from .nifti_check import check_nifti_complete
from .sitk_errors import read_error, sitk_message

__all__ = [
    'read_image', 'read_volume', 'read_xray', 'write_image', 'check_min_size',
    'guess_modality', 'SUPPORTED_EXTENSIONS', 'MODALITY_KEY'
]

PathLike = Union[str, os.PathLike]


def _check_exists(path: str) -> None:
    if not osp.exists(path):
        raise InvalidInputError(
            f'{path}: file or folder not found (working directory {os.getcwd()}); '
            'check the path.')


def _read_file(path: str, ext: str):
    """Read one image file with the ImageIO of its extension: ``(sitk.Image, meta, get)``."""
    import SimpleITK as sitk
    reader = sitk.ImageFileReader()
    reader.SetFileName(path)
    reader.SetImageIO(READ_IMAGE_IO[ext])
    if ext in NIFTI_EXTENSIONS:
        check_nifti_header(path)  # ITK silently repairs a zero / NaN pixdim to 1 mm
    try:
        reader.ReadImageInformation()
        img = reader.Execute()
    except RuntimeError as err:
        raise read_error(path, READ_IMAGE_IO[ext][:-7], err) from None
    if ext in NIFTI_EXTENSIONS:
        check_nifti_complete(path)

    def get(tag):
        return reader.GetMetaData(tag).strip() if reader.HasMetaDataKey(tag) else ''

    meta = {'format': READ_IMAGE_IO[ext][:-7]}
    if ext in DICOM_EXTENSIONS:
        for key, tag in FILE_TAGS:
            if get(tag):
                meta[key] = get(tag)
    return img, meta, get


def _to_grey(arr: np.ndarray) -> np.ndarray:
    """(..., C) colour pixels -> grey, ITU-R 601 luma; keeps the integer dtype."""
    if arr.shape[-1] in (2, 4):  # drop alpha
        arr = arr[..., :-1]
    if arr.shape[-1] == 1:
        return arr[..., 0]
    if np.all(arr[..., :1] == arr):
        return arr[..., 0]
    grey = arr[..., :3].astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    if np.issubdtype(arr.dtype, np.integer):
        grey = np.rint(grey).astype(arr.dtype)
    return grey


def read_image(path: PathLike, modality: Optional[str] = None, ndim: Optional[int] = None,
               series_uid: Optional[str] = None) -> MedicalImage:
    """Read a 2D image or 3D volume with its geometry.

    Args:
        path: an image file (see :data:`SUPPORTED_EXTENSIONS`) or a folder holding one DICOM
            series.
        modality: ``'CT'``, ``'MR'``, ``'XR'`` or ``'OT'``; ``None`` guesses it (the rule
            of :mod:`mmanat.fileio.modality`).
        ndim: require 2 or 3 dimensions; ``None`` accepts both. A single slice read from a
            picture format (DICOM file, PNG, JPEG) is returned as 2D unless ``ndim=3``.
        series_uid: for a DICOM folder holding several series, the SeriesInstanceUID to read.

    Returns:
        MedicalImage with ``path`` set and ``meta`` holding what the header said (format,
        DICOM modality/photometric tags, ``modality_source``, ``spacing_known`` for 2D).
        DICOM pixels are always in the dark-air MONOCHROME2 convention: MONOCHROME1 data
        are inverted (``meta['inverted']``, ``meta['photometric_stored']``).

    Raises:
        InvalidInputError: missing file, unknown extension, unreadable/truncated file, empty
            or mixed DICOM folder, wrong number of dimensions, vector image where a scalar 3D
            volume is required.
    """
    import SimpleITK as sitk
    path = os.fspath(path)
    if ndim not in (None, 2, 3):
        raise InvalidInputError(f'ndim={ndim!r} is not supported; use 2, 3 or None.')
    _check_exists(path)
    if osp.isdir(path):
        img, meta, get = read_dicom_series(path, series_uid)
        ext = 'dicom-folder'
    else:
        ext = image_extension(path)
        if ext not in READ_IMAGE_IO:
            raise InvalidInputError(
                f'{path}: unknown image extension {ext or "(none)"!r}; supported: '
                f'{", ".join(SUPPORTED_EXTENSIONS)} or a DICOM series folder. Convert the '
                'file (e.g. with SimpleITK or 3D Slicer) or rename it if the extension is wrong.')
        img, meta, get = _read_file(path, ext)

    comps = img.GetNumberOfComponentsPerPixel()
    spacing = np.array(img.GetSpacing(), dtype=np.float64)
    origin = np.array(img.GetOrigin(), dtype=np.float64)
    d = img.GetDimension()
    direction = np.array(img.GetDirection(), dtype=np.float64).reshape(d, d)
    size = list(img.GetSize())
    arr = sitk.GetArrayFromImage(img)  # (t,) z, y, x (, c)

    # drop trailing singleton dimensions beyond 3 (e.g. a NIfTI with a time axis of length 1)
    while d > 3 and size[-1] == 1:
        arr = arr[0]
        size = size[:-1]
        d -= 1
        spacing, origin, direction = spacing[:d], origin[:d], direction[:d, :d]
    if d > 3:
        raise InvalidInputError(
            f'{path}: image is {d}D with size {size} (ITK order x, y, z, t); mmanat needs a '
            '3D volume: extract one time point or channel first, e.g. with SimpleITK '
            '`img[:, :, :, 0]`.')
    check_geometry(path, spacing, origin, direction)  # every reader, every format
    # a DICOM folder holding one picture (a radiograph) is a picture, not a 1-slice volume
    picture = ext in PICTURE_EXTENSIONS or (ext == 'dicom-folder' and meta['num_files'] == 1)
    if ndim == 3 and d == 3 and size[2] == 1 and picture and \
            meta.get('dicom_modality', '').upper() in XR_DICOM_MODALITIES:
        raise InvalidInputError(
            f'{path}: holds one radiograph (DICOM modality {meta["dicom_modality"]}, size '
            f'{size[:2]}), but a 3D volume is required; pass a CT/MR volume file or the folder '
            'of a whole DICOM series (radiographs go to tools/extract_eve.py).')
    if comps > 1:
        if ndim == 3 or (d == 3 and not (picture and size[2] == 1)):
            raise InvalidInputError(
                f'{path}: image has {comps} components per voxel (vector/RGB image, size '
                f'{size}); a scalar 3D volume is required: extract one component or convert '
                'to grey first.')
        arr = _to_grey(arr)
        meta['converted_to_grey_from_components'] = comps

    squeeze = d == 3 and size[2] == 1 and (ndim == 2 or (ndim is None and picture))
    if squeeze:
        arr = arr[0]
        sub = direction[:2, :2]
        if abs(np.linalg.det(sub)) < 1e-6:
            meta['direction_3d'] = direction.tolist()
            meta['origin_3d'] = origin.tolist()
            sub, origin2 = np.eye(2), np.zeros(2)
        else:
            origin2 = origin[:2]
        spacing, origin, direction, d = spacing[:2], origin2, sub, 2
    if ndim is not None and d != ndim:
        what = 'a 3D volume' if ndim == 3 else 'a 2D image'
        raise InvalidInputError(
            f'{path}: image is {d}D with size {size} (ITK order x, y[, z]) but {what} is '
            'required; pass the right file (a DICOM series is read from its folder).')
    if d == 2:
        known = ext not in BITMAP_EXTENSIONS
        if ext in DICOM_EXTENSIONS + ('dicom-folder', ):
            dicom_sp = dicom_spacing_2d(get)
            known = dicom_sp is not None
            spacing = np.array(dicom_sp if known else (1.0, 1.0))
        meta['spacing_known'] = bool(known)

    if 'photometric' in meta:
        arr = to_monochrome2(arr, meta)
    mod, source = resolve_modality(arr, modality, meta.get('dicom_modality'),
                                   get(MODALITY_KEY), path)
    meta['modality_source'] = source
    return MedicalImage(arr, spacing=spacing, origin=origin, direction=direction,
                        modality=mod, path=path, meta=meta)


def read_volume(path: PathLike, modality: Optional[str] = None,
                min_size: Union[None, int, Sequence[int]] = None,
                series_uid: Optional[str] = None) -> MedicalImage:
    """Read a 3D volume (see :func:`read_image`), refusing anything that is not 3D scalar.

    Args:
        path: volume file or DICOM series folder.
        modality: as in :func:`read_image`.
        min_size: smallest acceptable size in voxels, one int for every axis or ITK order
            ``(x, y, z)``; ``None`` accepts any size.
        series_uid: see :func:`read_image`.

    Raises:
        InvalidInputError: as :func:`read_image`, plus a volume smaller than ``min_size``.
    """
    image = read_image(path, modality=modality, ndim=3, series_uid=series_uid)
    if min_size is not None:
        check_min_size(image, min_size)
    return image


def check_min_size(image: MedicalImage, min_size: Union[int, Sequence[int]]) -> None:
    """Raise :class:`InvalidInputError` when ``image`` has fewer voxels than ``min_size`` along
    some axis (``min_size``: one int, or ITK order ``(x, y[, z])``)."""
    need = np.asarray(min_size, dtype=np.int64).reshape(-1)
    if need.size == 1:
        need = np.repeat(need, image.ndim)
    if need.size != image.ndim:
        raise InvalidInputError(
            f'min_size {need.tolist()} has {need.size} values; expected 1 or {image.ndim} '
            '(ITK order x, y[, z]).')
    size = image.size
    if np.any(size < need):
        axes = 'xyz'[:image.ndim]
        bad = ', '.join(f'{a}: {s} < {n}' for a, s, n in zip(axes, size, need) if s < n)
        raise InvalidInputError(
            f'{image.path or "<in-memory image>"}: image size {size.tolist()} voxels (x, y, z) '
            f'is smaller than the required minimum {need.tolist()} ({bad}); use a larger '
            'scan or lower the minimum.')


def read_xray(path: PathLike) -> MedicalImage:
    """Read a 2D radiograph (DICOM, PNG, JPEG, or a 2D NRRD/MHA/NIfTI).

    The result has modality ``'XR'`` and follows the usual dark-air (MONOCHROME2) convention:
    a DICOM stored as MONOCHROME1 (bright air) comes back inverted (see :func:`read_image`;
    ``meta['inverted']`` is True). Colour pictures become grey. Pixel spacing comes from DICOM
    Pixel Spacing / Imager Pixel Spacing; when unknown it is 1.0 and ``meta['spacing_known']``
    is False.
    """
    return read_image(path, modality='XR', ndim=2)


# ---------------------------------------------------------------------------------- writing
def write_image(image: MedicalImage, path: PathLike, compress: bool = True) -> str:
    """Write an image or label map with its geometry, atomically.

    The data go to a temporary file next to ``path`` that is renamed onto ``path`` only when
    the write succeeded; on any error nothing is left at ``path`` (an existing file there is
    kept unchanged). Integer label maps keep their dtype; boolean masks are written as uint8.
    NRRD/MetaImage files also store the modality (read back by :func:`read_image`).

    Args:
        image: the image to write.
        path: destination; extension one of ``.nii``, ``.nii.gz``, ``.nrrd``, ``.mha``,
            ``.mhd`` (+ ``.raw``/``.zraw`` beside it), and for 2D images ``.png`` (uint8 or
            uint16) / ``.jpg`` (uint8).
        compress: compress the pixel data where the format allows it.

    Returns:
        The absolute path written.
    """
    import SimpleITK as sitk
    path = osp.abspath(os.fspath(path))
    if not isinstance(image, MedicalImage):
        raise InvalidInputError(
            f'{path}: write_image expects a MedicalImage, got {type(image).__name__}; wrap '
            'the array with MedicalImage(array, spacing=..., origin=..., direction=...).')
    ext = image_extension(path)
    if ext not in WRITE_IMAGE_IO:
        raise InvalidInputError(
            f'{path}: cannot write extension {ext or "(none)"!r}; use one of '
            f'{", ".join(WRITE_IMAGE_IO)}.')
    dtype = image.array.dtype
    if ext in BITMAP_EXTENSIONS:
        allowed = (np.uint8,) if ext != '.png' else (np.uint8, np.uint16)
        if image.ndim != 2 or dtype not in allowed:
            raise InvalidInputError(
                f'{path}: {ext} holds 2D {"/".join(np.dtype(a).name for a in allowed)} '
                f'pictures, got a {image.ndim}D {dtype} image; rescale/cast it first or write '
                '.nrrd/.mha/.nii.gz, which keep any dtype and the geometry.')
    if dtype == np.float16:
        image = image.with_array(image.array.astype(np.float32))
    if dtype == np.int64 or dtype == np.uint64:
        # NIfTI and some readers handle 64-bit integers poorly; label maps fit in int32
        arr = image.array
        if arr.size and (arr.min() < np.iinfo(np.int32).min or arr.max() > np.iinfo(np.int32).max):
            raise InvalidInputError(f'{path}: 64-bit integer values exceed the int32 range.')
        image = image.with_array(arr.astype(np.int32))
    img = image.to_sitk()
    if image.modality and ext in ('.nrrd', '.mha', '.mhd'):
        img.SetMetaData(MODALITY_KEY, image.modality)
    use_compression = bool(compress) and ext not in ('.nii',)

    def _write(target):
        writer = sitk.ImageFileWriter()
        writer.SetImageIO(WRITE_IMAGE_IO[ext])
        writer.SetFileName(target)
        writer.SetUseCompression(use_compression)
        try:
            writer.Execute(img)
        except RuntimeError as err:
            raise InvalidInputError(
                f'{path}: writing failed ({sitk_message(err)}); check free disk space and '
                'write permission of the folder.') from None

    if ext == '.mhd':
        _write_two_file(path, _write)
    else:
        with atomic_path(path) as tmp:
            _write(tmp)
    return path


def _write_two_file(path: str, write) -> None:
    """MetaImage header + raw data: write both into a private temporary folder under their
    final names (the header refers to the data file by name), then move the data file and
    finally the header into place."""
    folder = osp.dirname(path)
    os.makedirs(folder, exist_ok=True)
    clean_folder_once(folder)
    tmpdir = tempfile.mkdtemp(prefix=temp_prefix('write'), dir=folder)
    try:
        write(osp.join(tmpdir, osp.basename(path)))
        header = osp.basename(path)
        for name in sorted(os.listdir(tmpdir), key=lambda n: n == header):
            os.replace(osp.join(tmpdir, name), osp.join(folder, name))
    finally:
        with contextlib.suppress(OSError):
            shutil.rmtree(tmpdir)
