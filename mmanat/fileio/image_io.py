"""Reading and writing medical images with their full geometry (SimpleITK underneath).

Supported inputs:

* 3D volumes: NIfTI (``.nii``, ``.nii.gz``), NRRD (``.nrrd``, ``.nhdr``), MetaImage (``.mha``,
  ``.mhd``), a folder holding one DICOM series, a single DICOM file (``.dcm``).
* 2D images: PNG, JPEG, DICOM (``.dcm``, radiographs), and 2D NRRD/MHA/NIfTI.

Every image comes back as a :class:`~mmanat.structures.MedicalImage`: the array in numpy order
``(z, y, x)`` / ``(y, x)``, the geometry (spacing, origin, direction) in ITK order ``(x, y, z)``
and world coordinates in LPS millimetres.

Modality rule (``modality=None``), in this order; the source is kept in
``image.meta['modality_source']``:

1. ``modality`` given by the caller -> used as is (``'argument'``).
2. DICOM Modality tag (0008,0060): ``CT`` -> ``'CT'``, ``MR`` -> ``'MR'``, projection
   radiography (``CR``, ``DX``, ``DR``, ``RG``, ``MG``, ``RF``, ``XA``, ``PX``, ``IO``) -> ``'XR'``,
   anything else -> ``'OT'`` (``'dicom'``).
3. A ``mmanat_modality`` header key written by :func:`write_image` in NRRD/MetaImage files
   (``'header'``).
4. Intensity range (``'intensity'``): a 2D image is ``'XR'``; a 3D integer volume holding
   at most 64 distinct values in [0, 255] is a label map, ``'OT'``; a 3D volume whose minimum
   is <= -500 (air in Hounsfield units) is ``'CT'``; one whose minimum is >= -50 is ``'MR'``;
   anything else is ``'OT'`` (unknown: pass ``modality=`` explicitly). A CT stored without
   its rescale intercept (all values >= 0) is therefore taken for MR: pass ``modality='CT'``.

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

from ..structures.image import MODALITIES, MedicalImage
from ..utils.exceptions import InvalidInputError
from .atomic import atomic_path

PathLike = Union[str, os.PathLike]

# extension -> SimpleITK ImageIO; longest extensions first so '.nii.gz' wins over '.gz'
_READ_IO = {
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
_WRITE_IO = {k: v for k, v in _READ_IO.items() if k not in ('.dcm', '.dicom', '.nhdr')}
# formats that only hold 2D pictures: a single slice read from them is returned as 2D
_PICTURE_EXTS = ('.dcm', '.dicom', '.png', '.jpg', '.jpeg')
_XR_DICOM = ('CR', 'DX', 'DR', 'RG', 'MG', 'RF', 'XA', 'PX', 'IO')
MODALITY_KEY = 'mmanat_modality'

SUPPORTED_EXTENSIONS = tuple(_READ_IO)


# ---------------------------------------------------------------------------------- helpers
def _extension(path: str) -> str:
    low = str(path).lower()
    for ext in sorted(_READ_IO, key=len, reverse=True):
        if low.endswith(ext):
            return ext
    return osp.splitext(low)[1]


def _sitk_message(err: Exception) -> str:
    """The ITK error text of a SimpleITK exception, on one line, without source locations."""
    text = str(err).strip()
    for marker in ('ITK ERROR:', 'itk::ERROR:', 'sitk::ERROR:'):
        if marker in text:
            text = text.split(marker, 1)[1]
    if text.startswith('Exception thrown in SimpleITK'):
        text = text.split('\n', 1)[-1]
    text = ' '.join(ln.strip() for ln in text.splitlines() if ln.strip())
    # drop the "Image(0x55...): " / "NiftiImageIO(0x...): " object prefix
    head, sep, tail = text.partition('): ')
    if sep and '(0x' in head and ' ' not in head.strip():
        text = tail
    return text[:400] or repr(err)


def _read_error(path: str, fmt: str, err: Exception) -> InvalidInputError:
    """An :class:`InvalidInputError` explaining why SimpleITK could not read ``path``."""
    msg = _sitk_message(err)
    low = msg.lower()
    if 'space directions' in low:
        what = 'its space directions (voxel spacing times orientation) are invalid'
        todo = ('fix the "space directions" line of the header: finite vectors, non-zero '
                'length, not parallel')
    elif 'direction' in low:
        what = 'its direction (orientation) matrix is singular or invalid'
        todo = ('fix the orientation in the header (an orthonormal direction), e.g. with '
                'SimpleITK SetDirection or 3D Slicer')
    elif 'spacing' in low:
        what = 'its voxel spacing is zero, negative or not a number'
        todo = 'fix the spacing in the header (every value finite and > 0), e.g. with SetSpacing'
    else:
        what = ('it is truncated or corrupt, or its extension does not match its content')
        todo = 're-export or re-download it'
    return InvalidInputError(f'{path}: cannot read the file as {fmt}: {what} ({msg}); {todo}.')


def _nifti_layout(hdr: bytes):
    """(data offset, bytes of voxel data) from the first bytes of a NIfTI-1/-2 header, or
    None when the header is not recognised."""
    import struct
    for endian in '<>':
        if len(hdr) >= 348 and struct.unpack(endian + 'i', hdr[:4])[0] == 348:
            dims = struct.unpack(endian + '8h', hdr[40:56])
            bitpix = struct.unpack(endian + 'h', hdr[72:74])[0]
            offset = max(int(struct.unpack(endian + 'f', hdr[108:112])[0]), 352)
            break
        if len(hdr) >= 540 and struct.unpack(endian + 'i', hdr[:4])[0] == 540:
            dims = struct.unpack(endian + '8q', hdr[16:80])
            bitpix = struct.unpack(endian + 'h', hdr[14:16])[0]
            offset = max(int(struct.unpack(endian + 'q', hdr[168:176])[0]), 544)
            break
    else:
        return None
    ndim = int(dims[0])
    if not 1 <= ndim <= 7 or bitpix <= 0:
        return None
    count = 1
    for d in dims[1:ndim + 1]:
        count *= max(int(d), 1)
    return offset, count * int(bitpix) // 8


def _check_nifti_complete(path: str) -> None:
    """Raise when a NIfTI file (``.nii``/``.nii.gz``) holds fewer bytes than its header
    promises. ITK reads a truncated ``.nii.gz`` without complaint (the missing voxels become
    0), so this is checked here: the gzip trailer's size field is compared with header offset
    + voxel bytes, and only on a mismatch is the whole stream decompressed to be sure."""
    import gzip
    import struct
    import zlib
    gz = path.lower().endswith('.gz')
    try:
        with (gzip.open(path, 'rb') if gz else open(path, 'rb')) as f:
            hdr = f.read(544)
    except (OSError, EOFError, zlib.error) as err:
        raise InvalidInputError(f'{path}: the NIfTI header cannot be decompressed ({err}); the '
                                'file is truncated or corrupt: re-export or re-download it.') \
            from None
    layout = _nifti_layout(hdr)
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


def _check_exists(path: str) -> None:
    if not osp.exists(path):
        raise InvalidInputError(
            f'{path}: file or folder not found (working directory {os.getcwd()}); '
            'check the path.')


def guess_modality(array: np.ndarray, dicom_modality: Optional[str] = None) -> str:
    """Guess the modality of an image (see the module docstring for the rule).

    Args:
        array: the pixel data (2D or 3D).
        dicom_modality: the DICOM Modality tag (0008,0060) if known.

    Returns:
        One of ``'CT'``, ``'MR'``, ``'XR'``, ``'OT'``.
    """
    if dicom_modality:
        tag = str(dicom_modality).strip().upper()
        if tag in ('CT', 'MR'):
            return tag
        if tag in _XR_DICOM:
            return 'XR'
        return 'OT'
    array = np.asarray(array)
    if array.ndim == 2:
        return 'XR'
    if array.size == 0:
        return 'OT'
    low = float(array.min())
    if (array.dtype == np.bool_ or np.issubdtype(array.dtype, np.integer)) and low >= 0 \
            and float(array.max()) <= 255 \
            and np.count_nonzero(np.bincount(array.reshape(-1).astype(np.int64))) <= 64:
        return 'OT'  # a label map / mask: few small non-negative integers
    if low <= -500:
        return 'CT'
    if low >= -50:
        return 'MR'
    return 'OT'


def _resolve_modality(array, modality, dicom_modality, header_modality, src):
    if modality is not None:
        mod = str(modality).upper()
        if mod not in MODALITIES:
            raise InvalidInputError(
                f'{src}: unknown modality {modality!r}; use one of {MODALITIES}.')
        return mod, 'argument'
    if dicom_modality:
        return guess_modality(array, dicom_modality), 'dicom'
    if header_modality and str(header_modality).upper() in MODALITIES:
        return str(header_modality).upper(), 'header'
    return guess_modality(array), 'intensity'


def _dicom_spacing_2d(get):
    """ITK-order (x, y) pixel spacing of a DICOM picture, or None when the header has none."""
    for tag in ('0028|0030', '0018|1164'):  # Pixel Spacing, Imager Pixel Spacing
        raw = get(tag)
        if not raw:
            continue
        try:
            row, col = [float(v) for v in raw.strip().split('\\')[:2]]
        except ValueError:
            continue
        if row > 0 and col > 0 and np.isfinite(row) and np.isfinite(col):
            return (col, row)  # DICOM gives row spacing (y) first
    return None


# ---------------------------------------------------------------------------------- reading
def _read_dicom_folder(path: str, series_uid: Optional[str]):
    import SimpleITK as sitk
    reader = sitk.ImageSeriesReader()
    warn = sitk.ProcessObject.GetGlobalWarningDisplay()
    sitk.ProcessObject.SetGlobalWarningDisplay(False)  # GDCM warns on folders without DICOM
    try:
        uids = list(reader.GetGDCMSeriesIDs(path))
    except RuntimeError as err:  # pragma: no cover - GDCM failure on an unreadable folder
        raise InvalidInputError(f'{path}: cannot scan the folder for DICOM files '
                                f'({_sitk_message(err)}).') from None
    finally:
        sitk.ProcessObject.SetGlobalWarningDisplay(warn)
    if not uids:
        raise InvalidInputError(
            f'{path}: folder holds no DICOM series (no readable DICOM files found); point to '
            'a folder that contains the .dcm files of one series, or to an image file.')
    if series_uid is None:
        if len(uids) > 1:
            counts = [len(reader.GetGDCMSeriesFileNames(path, u)) for u in uids]
            listing = ', '.join(f'{u} ({n} files)' for u, n in zip(uids, counts))
            raise InvalidInputError(
                f'{path}: folder mixes {len(uids)} DICOM series: {listing}; move each series '
                'into its own folder or pass series_uid= to choose one.')
        series_uid = uids[0]
    elif series_uid not in uids:
        raise InvalidInputError(
            f'{path}: no DICOM series with SeriesInstanceUID {series_uid!r}; available: {uids}.')
    files = reader.GetGDCMSeriesFileNames(path, series_uid)
    reader.SetFileNames(files)
    reader.MetaDataDictionaryArrayUpdateOn()
    try:
        img = reader.Execute()
    except RuntimeError as err:
        raise _read_error(f'{path} (series {series_uid})', 'a DICOM series', err) from None

    def get(tag):
        return reader.GetMetaData(0, tag).strip() if reader.HasMetaDataKey(0, tag) else ''

    meta = {'series_uid': series_uid, 'num_files': len(files), 'format': 'DICOM series'}
    for key, tag in (('dicom_modality', '0008|0060'), ('photometric', '0028|0004'),
                     ('patient_id', '0010|0020'), ('series_description', '0008|103e')):
        if get(tag):
            meta[key] = get(tag)
    return img, meta, get


def _read_file(path: str, ext: str):
    import SimpleITK as sitk
    reader = sitk.ImageFileReader()
    reader.SetFileName(path)
    reader.SetImageIO(_READ_IO[ext])
    try:
        reader.ReadImageInformation()
        img = reader.Execute()
    except RuntimeError as err:
        raise _read_error(path, _READ_IO[ext][:-7], err) from None
    if ext in ('.nii', '.nii.gz'):
        _check_nifti_complete(path)

    def get(tag):
        return reader.GetMetaData(tag).strip() if reader.HasMetaDataKey(tag) else ''

    meta = {'format': _READ_IO[ext][:-7]}
    if ext in ('.dcm', '.dicom'):
        for key, tag in (('dicom_modality', '0008|0060'), ('photometric', '0028|0004'),
                         ('patient_id', '0010|0020'), ('view_position', '0018|5101')):
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
        modality: ``'CT'``, ``'MR'``, ``'XR'`` or ``'OT'``; ``None`` guesses it (module
            docstring).
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
        img, meta, get = _read_dicom_folder(path, series_uid)
        ext = 'dicom-folder'
    else:
        ext = _extension(path)
        if ext not in _READ_IO:
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
    if comps > 1:
        if ndim == 3 or (d == 3 and not (ext in _PICTURE_EXTS and size[2] == 1)):
            raise InvalidInputError(
                f'{path}: image has {comps} components per voxel (vector/RGB image, size '
                f'{size}); a scalar 3D volume is required: extract one component or convert '
                'to grey first.')
        arr = _to_grey(arr)
        meta['converted_to_grey_from_components'] = comps

    squeeze = d == 3 and size[2] == 1 and (ndim == 2 or (ndim is None and ext in _PICTURE_EXTS))
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
        known = ext not in ('.png', '.jpg', '.jpeg')
        if ext in ('.dcm', '.dicom', 'dicom-folder'):
            dicom_sp = _dicom_spacing_2d(get)
            known = dicom_sp is not None
            spacing = np.array(dicom_sp if known else (1.0, 1.0))
        meta['spacing_known'] = bool(known)

    if 'photometric' in meta:
        arr = _to_monochrome2(arr, meta)
    mod, source = _resolve_modality(arr, modality, meta.get('dicom_modality'),
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


def _itk_inverts_monochrome1() -> bool:
    """ITK >= 5.1 converts MONOCHROME1 pixel data to MONOCHROME2 inside GDCMImageIO."""
    import SimpleITK as sitk
    return (sitk.Version.ITKMajorVersion(), sitk.Version.ITKMinorVersion()) >= (5, 1)


def _to_monochrome2(arr: np.ndarray, meta: dict) -> np.ndarray:
    """Bring MONOCHROME1 (bright air) DICOM pixels to the dark-air MONOCHROME2 convention.

    ITK >= 5.1 already inverts them while reading (``stored max - value``) but leaves the
    Photometric Interpretation tag at MONOCHROME1; older ITK does not, and then the pixels
    are inverted here as ``min + max - value`` (same dtype, same range)."""
    photometric = str(meta.get('photometric', '')).strip().upper()
    meta['inverted'] = False
    if photometric != 'MONOCHROME1':
        return arr
    meta['photometric_stored'] = 'MONOCHROME1'
    meta['photometric'] = 'MONOCHROME2'
    meta['inverted'] = True
    if _itk_inverts_monochrome1():
        return arr
    lo, hi = arr.min(), arr.max()  # pragma: no cover - only with ITK < 5.1
    if np.issubdtype(arr.dtype, np.integer):  # pragma: no cover
        return (np.int64(lo) + np.int64(hi) - arr.astype(np.int64)).astype(arr.dtype)
    return (lo + hi) - arr  # pragma: no cover


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
    ext = _extension(path)
    if ext not in _WRITE_IO:
        raise InvalidInputError(
            f'{path}: cannot write extension {ext or "(none)"!r}; use one of '
            f'{", ".join(_WRITE_IO)}.')
    dtype = image.array.dtype
    if ext in ('.png', '.jpg', '.jpeg'):
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
        writer.SetImageIO(_WRITE_IO[ext])
        writer.SetFileName(target)
        writer.SetUseCompression(use_compression)
        try:
            writer.Execute(img)
        except RuntimeError as err:
            raise InvalidInputError(
                f'{path}: writing failed ({_sitk_message(err)}); check free disk space and '
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
    tmpdir = tempfile.mkdtemp(prefix='.tmp-write-', dir=folder)
    try:
        write(osp.join(tmpdir, osp.basename(path)))
        header = osp.basename(path)
        for name in sorted(os.listdir(tmpdir), key=lambda n: n == header):
            os.replace(osp.join(tmpdir, name), osp.join(folder, name))
    finally:
        with contextlib.suppress(OSError):
            shutil.rmtree(tmpdir)
