"""Point lists of the viewer page <-> point files, through :mod:`mmanat.fileio.points_io`.

The page keeps its list of points as JSON (``{"name": ..., "lps": [x, y, z]}``, world LPS mm;
``[x, y]`` for a 2D image). Uploaded files are parsed, and downloads written, by the same
readers and writers as the command line (``read_points`` / ``write_points``): the text goes
through a private temporary folder under a fixed name, so nothing the page sends is ever used
as a path.
"""
from __future__ import annotations

import os.path as osp
import tempfile
from typing import Dict, List, Sequence

import numpy as np

from ..fileio import read_points, write_points
from ..structures import PointSet
from ..utils.exceptions import InvalidInputError

#: formats the page can load and save, by the extension a file name ends with
FORMATS = {'mrk.json': '.mrk.json', 'csv': '.csv', 'fcsv': '.fcsv'}
#: the most points one list may hold (requests are size-limited too)
MAX_POINTS = 5000


def format_of(filename: str) -> str:
    """The point format of an uploaded file name (``'mrk.json'``, ``'csv'``, ``'fcsv'``)."""
    low = str(filename or '').strip().lower()
    for fmt, ext in FORMATS.items():
        if low.endswith(ext):
            return fmt
    raise InvalidInputError(
        f'{filename!r}: unknown point-file type; load a 3D Slicer .mrk.json, a .fcsv or a .csv '
        'with the header name,x,y,z (world mm).')


def check_format(fmt: str) -> str:
    """A format name of :data:`FORMATS` (a leading dot is accepted)."""
    f = str(fmt or '').lower().lstrip('.')
    if f not in FORMATS:
        raise InvalidInputError(f'point format {fmt!r}: use one of {", ".join(FORMATS)}.')
    return f


def parse_points(filename: str, text: str, space: str = 'LPS', ndim: int = 3
                 ) -> List[Dict]:
    """Read the text of an uploaded point file.

    Args:
        filename: the file's name as the browser gives it (only its ending is used).
        text: the file's content.
        space: ``'LPS'`` or ``'RAS'``: the convention of a ``.csv`` without a ``# space``
            line (Slicer files declare their own).
        ndim: 3 for volumes, 2 for 2D images (``name,x,y`` world mm).

    Returns:
        list[dict]: ``{"name", "lps"}`` per point, world LPS mm.

    Raises:
        InvalidInputError: unknown type, malformed content, points of the wrong dimension,
            no point, too many points.
    """
    fmt = format_of(filename)
    if ndim == 2 and fmt != 'csv':
        raise InvalidInputError(f'{filename}: 2D images take .csv points name,x,y (world mm).')
    with tempfile.TemporaryDirectory(prefix='mmanat-viewer-') as tmp:
        path = osp.join(tmp, 'upload' + FORMATS[fmt])
        with open(path, 'w', encoding='utf-8', newline='') as f:
            f.write(text)
        try:
            points = read_points(path, space=space, ndim=ndim, min_points=1)
        except InvalidInputError as err:  # name the user's file, not the temporary copy
            raise InvalidInputError(str(err).replace(path, filename)) from None
    if len(points) > MAX_POINTS:
        raise InvalidInputError(f'{filename}: {len(points)} points; the viewer takes at most '
                                f'{MAX_POINTS}.')
    return [dict(name=str(n), lps=[float(v) for v in xyz])
            for n, xyz in zip(points.names, points.xyz)]


def to_pointset(rows: Sequence[Dict], ndim: int = 3) -> PointSet:
    """The page's point list (``{"name", "lps"}``) as a :class:`PointSet`.

    Raises:
        InvalidInputError: a point without name or coordinates, non-finite or wrongly sized
            coordinates, too many points.
    """
    if not isinstance(rows, (list, tuple)) or len(rows) > MAX_POINTS:
        raise InvalidInputError(f'points must be a list of at most {MAX_POINTS} entries.')
    names, xyz = [], []
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise InvalidInputError(f'point {i}: expected an object with "name" and "lps".')
        name = str(row.get('name') or f'p{i + 1}').strip()[:200] or f'p{i + 1}'
        try:
            p = np.asarray(row.get('lps'), dtype=np.float64).reshape(-1)
        except (TypeError, ValueError):
            raise InvalidInputError(f'point {name!r}: coordinates must be numbers.') from None
        if p.size == 3 and ndim == 2:
            p = p[:2]
        if p.size != ndim or not np.all(np.isfinite(p)):
            raise InvalidInputError(f'point {name!r}: needs {ndim} finite world coordinates, '
                                    f'got {p.tolist()}.')
        names.append(name)
        xyz.append(p)
    arr = np.asarray(xyz, dtype=np.float64).reshape(-1, ndim)
    return PointSet(arr, names=names)


def export_points(points: PointSet, fmt: str, space: str = 'LPS',
                  stem: str = 'points') -> Dict[str, str]:
    """A point file's name and text, written by :func:`mmanat.fileio.write_points`.

    Args:
        points: the points (LPS in memory), extra columns kept in ``.csv`` files.
        fmt: ``'mrk.json'``, ``'csv'`` or ``'fcsv'``.
        space: ``'LPS'`` or ``'RAS'`` (the file declares it; 2D points: LPS only).
        stem: the suggested file name without extension.

    Returns:
        dict: ``{"filename", "text"}``.
    """
    fmt = check_format(fmt)
    if points.xyz.shape[1] == 2 and (fmt != 'csv' or str(space).upper() != 'LPS'):
        raise InvalidInputError('2D points are saved as .csv (name,x,y world mm), without an '
                                'LPS/RAS choice.')
    with tempfile.TemporaryDirectory(prefix='mmanat-viewer-') as tmp:
        path = write_points(points, osp.join(tmp, 'points' + FORMATS[fmt]), space=space)
        with open(path, encoding='utf-8') as f:
            text = f.read()
    safe = ''.join(c if c.isalnum() or c in '-_.' else '_' for c in stem)[:80] or 'points'
    return dict(filename=safe + FORMATS[fmt], text=text)
