"""The landmark files of the two sample chest CTs (``data/samples/ct/lung{1,2}_landmarks.csv``).

They are generated at set-up (``tools/fetch_sample_data.py`` / ``make data`` call
:func:`ensure_sample_landmarks`) by :func:`~.detect.detect_chest_landmarks` and written as
``name,x,y,z`` (world LPS mm) with :func:`mmanat.fileio.write_points`; an existing file is kept.
"""
from __future__ import annotations

import os
import os.path as osp
from typing import Callable, Dict, Optional

from ...structures.points import PointSet
from ...utils.exceptions import InvalidInputError

SAMPLE_SCANS = ('lung1', 'lung2')


def sample_landmarks_path(data_dir: str, scan: str) -> str:
    """``<data_dir>/ct/<scan>_landmarks.csv``."""
    return osp.join(os.fspath(data_dir), 'ct', f'{scan}_landmarks.csv')


def _scan_path(data_dir: str, scan: str) -> str:
    if scan not in SAMPLE_SCANS:
        raise InvalidInputError(f'unknown sample scan {scan!r}; use one of {SAMPLE_SCANS}.')
    path = osp.join(os.fspath(data_dir), 'ct', f'{scan}.nrrd')
    if not osp.isfile(path):
        raise InvalidInputError(f'{path}: sample CT not found; run `python '
                                'tools/fetch_sample_data.py` (or `make data`) first.')
    return path


def ensure_sample_landmarks(data_dir: str, force: bool = False,
                            log: Optional[Callable] = print) -> Dict[str, str]:
    """Write the landmark file of every sample CT present in ``data_dir`` that lacks one.

    Args:
        data_dir: the sample folder (``data/samples``).
        force: detect and write again even when the file exists.
        log: progress messages (None: quiet).

    Returns:
        ``{scan: csv path}`` of the scans present.
    """
    from ...fileio import read_volume, write_points
    from .detect import detect_chest_landmarks
    out = {}
    for scan in SAMPLE_SCANS:
        image_path = osp.join(os.fspath(data_dir), 'ct', f'{scan}.nrrd')
        if not osp.isfile(image_path):
            continue
        csv = sample_landmarks_path(data_dir, scan)
        if force or not osp.isfile(csv):
            points = detect_chest_landmarks(read_volume(image_path, modality='CT'))
            write_points(points, csv)
            if log:
                log(f'[landmarks] {osp.relpath(csv, os.fspath(data_dir))}: '
                    f'{len(points.names)} landmarks')
        out[scan] = csv
    return out


def sample_landmarks(scan: str, data_dir: str) -> PointSet:
    """The named landmarks of sample CT ``scan`` (``'lung1'`` / ``'lung2'``), world LPS mm:
    read from its file, which is generated first when missing.

    Raises:
        InvalidInputError: unknown scan, or the sample CT is absent.
    """
    from ...fileio import read_points
    _scan_path(data_dir, scan)
    csv = sample_landmarks_path(data_dir, scan)
    if not osp.isfile(csv):
        ensure_sample_landmarks(data_dir, log=None)
    return read_points(csv)
