"""DICOM reading: a folder holding one series (3D), the tags mmanat keeps, 2D pixel spacing
and the MONOCHROME1 -> MONOCHROME2 (dark air) convention."""
from __future__ import annotations

from typing import Callable, Optional, Tuple

import numpy as np

from ..utils.exceptions import InvalidInputError
from .sitk_errors import read_error, sitk_message

__all__ = [
    'XR_DICOM_MODALITIES', 'SERIES_TAGS', 'FILE_TAGS', 'read_dicom_series', 'dicom_spacing_2d',
    'itk_inverts_monochrome1', 'to_monochrome2'
]

#: DICOM Modality (0008,0060) values of projection radiography
XR_DICOM_MODALITIES = ('CR', 'DX', 'DR', 'RG', 'MG', 'RF', 'XA', 'PX', 'IO')
#: meta key -> DICOM tag, kept in ``image.meta`` when read from a series folder
SERIES_TAGS = (('dicom_modality', '0008|0060'), ('photometric', '0028|0004'),
               ('patient_id', '0010|0020'), ('series_description', '0008|103e'))
#: meta key -> DICOM tag, kept in ``image.meta`` when read from a single DICOM file
FILE_TAGS = (('dicom_modality', '0008|0060'), ('photometric', '0028|0004'),
             ('patient_id', '0010|0020'), ('view_position', '0018|5101'))

TagGetter = Callable[[str], str]


def read_dicom_series(path: str, series_uid: Optional[str]) -> Tuple[object, dict, TagGetter]:
    """Read the DICOM series held by the folder ``path``.

    Args:
        path: a folder holding the ``.dcm`` files of one series (or several, with
            ``series_uid``).
        series_uid: the SeriesInstanceUID to read; ``None`` requires exactly one series.

    Returns:
        ``(sitk.Image, meta, get)``: the image, ``meta`` (``series_uid``, ``num_files``,
        ``format``, and the :data:`SERIES_TAGS` present) and ``get(tag) -> str`` reading a
        tag of the first file (``''`` when absent).

    Raises:
        InvalidInputError: no DICOM series in the folder, several series and no
            ``series_uid``, an unknown ``series_uid``, or an unreadable series.
    """
    import SimpleITK as sitk
    reader = sitk.ImageSeriesReader()
    warn = sitk.ProcessObject.GetGlobalWarningDisplay()
    sitk.ProcessObject.SetGlobalWarningDisplay(False)  # GDCM warns on folders without DICOM
    try:
        uids = list(reader.GetGDCMSeriesIDs(path))
    except RuntimeError as err:  # pragma: no cover - GDCM failure on an unreadable folder
        raise InvalidInputError(f'{path}: cannot scan the folder for DICOM files '
                                f'({sitk_message(err)}).') from None
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
        raise read_error(f'{path} (series {series_uid})', 'a DICOM series', err) from None

    def get(tag):
        return reader.GetMetaData(0, tag).strip() if reader.HasMetaDataKey(0, tag) else ''

    meta = {'series_uid': series_uid, 'num_files': len(files), 'format': 'DICOM series'}
    for key, tag in SERIES_TAGS:
        if get(tag):
            meta[key] = get(tag)
    return img, meta, get


def dicom_spacing_2d(get: TagGetter) -> Optional[Tuple[float, float]]:
    """ITK-order ``(x, y)`` pixel spacing (mm) of a DICOM picture.

    Args:
        get: reads a DICOM tag (``'gggg|eeee'``) as text, ``''`` when absent.

    Returns:
        From Pixel Spacing (0028,0030), else Imager Pixel Spacing (0018,1164); ``None`` when
        the header has neither (or only invalid values).
    """
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


def itk_inverts_monochrome1() -> bool:
    """Whether this ITK converts MONOCHROME1 pixel data to MONOCHROME2 inside GDCMImageIO
    (ITK >= 5.1)."""
    import SimpleITK as sitk
    return (sitk.Version.ITKMajorVersion(), sitk.Version.ITKMinorVersion()) >= (5, 1)


def to_monochrome2(arr: np.ndarray, meta: dict) -> np.ndarray:
    """Bring MONOCHROME1 (bright air) DICOM pixels to the dark-air MONOCHROME2 convention.

    ITK >= 5.1 already inverts them while reading (``stored max - value``) but leaves the
    Photometric Interpretation tag at MONOCHROME1; older ITK does not, and then the pixels
    are inverted here as ``min + max - value`` (same dtype, same range).

    Args:
        arr: the pixels as read.
        meta: the image's meta dict; its ``photometric`` entry is read and updated, and
            ``inverted`` (and ``photometric_stored`` for MONOCHROME1) are set.

    Returns:
        The pixels in the MONOCHROME2 convention.
    """
    photometric = str(meta.get('photometric', '')).strip().upper()
    meta['inverted'] = False
    if photometric != 'MONOCHROME1':
        return arr
    meta['photometric_stored'] = 'MONOCHROME1'
    meta['photometric'] = 'MONOCHROME2'
    meta['inverted'] = True
    if itk_inverts_monochrome1():
        return arr
    lo, hi = arr.min(), arr.max()  # pragma: no cover - only with ITK < 5.1
    if np.issubdtype(arr.dtype, np.integer):  # pragma: no cover
        return (np.int64(lo) + np.int64(hi) - arr.astype(np.int64)).astype(arr.dtype)
    return (lo + hi) - arr  # pragma: no cover
