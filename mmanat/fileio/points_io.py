"""Reading and writing named point files in world millimetres.

Formats (chosen by extension):

* ``.csv``: header ``name,x,y,z`` (or ``name,x,y`` for 2D points); further columns are kept
  in :attr:`PointSet.extra` (numeric when every value parses as a number) and written back.
  Lines starting with ``#`` are comments. A file written in RAS declares it in a first line
  ``# space = RAS`` (honoured on reading, like the Slicer formats' declaration); a file
  without that line is in ``space`` (default LPS), so LPS files stay plain CSV.
* ``.mrk.json``: 3D Slicer markups JSON. The file declares ``coordinateSystem`` (``LPS`` or
  ``RAS``): that declaration is honoured on reading, whatever ``space`` says; on writing it is
  set to ``space``.
* ``.fcsv``: legacy 3D Slicer fiducial CSV; its ``# CoordinateSystem`` line is honoured
  (``RAS``/``0``, ``LPS``/``1``; RAS when the line is missing, as in Slicer).
* pixel ``.csv`` (2D images only): header ``name,column,row`` - 0-based pixel indices of an
  image (``column`` along x, ``row`` along y; integers are pixel centres, fractions allowed),
  read with :func:`read_pixel_points` (a file with ``column,row`` but no ``x,y`` columns is
  one, :func:`is_pixel_points_file`), written with :func:`write_pixel_points`. An image's
  ``index_to_world`` turns them into world mm.

In memory, :class:`~mmanat.structures.PointSet` always holds LPS coordinates.
"""
from __future__ import annotations

import csv
import io
import json
import os
import os.path as osp
from typing import List, Optional, Sequence, Union

import numpy as np

from ..structures.points import PointSet, check_space, convert_space
from ..utils.exceptions import InvalidInputError
from .atomic import atomic_path

PathLike = Union[str, os.PathLike]
POINT_EXTENSIONS = ('.csv', '.mrk.json', '.fcsv')
#: the coordinate columns of a pixel point file (2D images)
PIXEL_COLUMNS = ('column', 'row')
_MRK_SCHEMA = ('https://raw.githubusercontent.com/slicer/slicer/master/Modules/Loadable/'
               'Markups/Resources/Schema/markups-schema-v1.0.3.json#')
_FCSV_COLUMNS = ['id', 'x', 'y', 'z', 'ow', 'ox', 'oy', 'oz', 'vis', 'sel', 'lock', 'label',
                 'desc', 'associatedNodeID']


def _points_format(path: str) -> str:
    low = path.lower()
    for ext in POINT_EXTENSIONS:
        if low.endswith(ext):
            return ext
    raise InvalidInputError(
        f'{path}: unknown point-file extension {osp.splitext(low)[1] or "(none)"!r}; use one '
        f'of {", ".join(POINT_EXTENSIONS)}.')


def _parse_column(values: List[str]):
    """Numbers when every value parses as one, else the strings."""
    try:
        return [float(v) for v in values]
    except ValueError:
        return list(values)


def _format_value(v) -> str:
    if isinstance(v, (float, np.floating)):
        return repr(float(v))  # shortest text that reads back to the same float
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    return str(v)


def _float(value: str, path: str, what: str) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise InvalidInputError(f'{path}: {what} value {value!r} is not a number; fix it '
                                '(coordinates in world mm).') from None
    if not np.isfinite(out):
        raise InvalidInputError(f'{path}: {what} value {value!r} is not finite; fix it '
                                '(coordinates in world mm).')
    return out


# ---------------------------------------------------------------------------------- CSV
def _table_rows(path: str, header: List[str], low: List[str], body: List[List[str]],
                coords: Sequence[str]):
    """The data rows of a point CSV: ``(coordinates (N, len(coords)), names or None, extra
    columns)``, every row checked against the header."""
    pos = [low.index(c) for c in coords]
    name_col = low.index('name') if 'name' in low else None
    extra_cols = [i for i in range(len(header)) if i not in pos and i != name_col]
    for ln, row in enumerate(body, start=2):
        if len(row) != len(header):
            raise InvalidInputError(
                f'{path}: data row {ln} has {len(row)} fields, the header has {len(header)}.')
    arr = np.array([[_float(r[i], path, header[i]) for i in pos] for r in body],
                   dtype=np.float64).reshape(len(body), len(pos))
    names = [r[name_col] for r in body] if name_col is not None else None
    extra = {header[i]: _parse_column([r[i] for r in body]) for i in extra_cols}
    return arr, names, extra


def _read_csv(path: str, space: str) -> PointSet:
    with open(path, newline='', encoding='utf-8-sig') as f:
        text = f.readlines()
    for ln in text:  # a "# space = RAS" declaration (written by _write_csv) wins
        key, sep, value = ln.strip().lstrip('#').partition('=')
        if ln.lstrip().startswith('#') and sep and key.strip().lower() == 'space':
            space = _declared_space(value, path)
    lines = [ln for ln in text if ln.strip() and not ln.lstrip().startswith('#')]
    rows = list(csv.reader(lines))
    if not rows:
        raise InvalidInputError(f'{path}: point file is empty; add a header name,x,y,z and '
                                'one row per point (world mm).')
    header = [h.strip() for h in rows[0]]
    low = [h.lower() for h in header]
    for col in ('x', 'y'):
        if col not in low:
            raise InvalidInputError(
                f'{path}: CSV header {header} has no {col!r} column; expected name,x,y,z '
                '(world mm) plus optional extra columns.')
    axes = ['x', 'y', 'z'] if 'z' in low else ['x', 'y']
    xyz, names, extra = _table_rows(path, header, low, rows[1:], axes)
    if len(axes) == 2:
        if check_space(space) != 'LPS':
            raise InvalidInputError(
                f'{path}: 2D points have no LPS/RAS convention; read them with space="LPS".')
        return PointSet(xyz, names=names, extra=extra)
    return PointSet.from_space(xyz, space, names=names, extra=extra)


def _write_csv(points: PointSet, space: str) -> str:
    xyz = points.xyz if points.xyz.shape[1] == 2 else points.in_space(space)
    axes = ['x', 'y', 'z'][:xyz.shape[1]]
    buf = io.StringIO()
    if xyz.shape[1] == 3 and space != 'LPS':
        buf.write(f'# space = {space}\n')
    writer = csv.writer(buf, lineterminator='\n')
    writer.writerow(['name'] + axes + list(points.extra))
    for i, name in enumerate(points.names):
        writer.writerow([name] + [_format_value(v) for v in xyz[i]]
                        + [_format_value(col[i]) for col in points.extra.values()])
    return buf.getvalue()


# ---------------------------------------------------------------------------------- Slicer
def _declared_space(value, path: str) -> str:
    text = str(value).strip().upper()
    mapping = {'RAS': 'RAS', '0': 'RAS', 'LPS': 'LPS', '1': 'LPS'}
    if text not in mapping:
        raise InvalidInputError(
            f'{path}: coordinate system {str(value).strip()!r} is not supported (only LPS or RAS '
            'world coordinates); re-save the markups from 3D Slicer in LPS or RAS.')
    return mapping[text]


def _read_mrk_json(path: str) -> PointSet:
    try:
        with open(path, encoding='utf-8') as f:
            doc = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InvalidInputError(f'{path}: not valid JSON ({err}); is it a Slicer .mrk.json '
                                'file?') from None
    markups = doc.get('markups') if isinstance(doc, dict) else None
    if not isinstance(markups, list):
        raise InvalidInputError(f'{path}: no "markups" list; not a 3D Slicer markups file.')
    xyz, names, desc = [], [], []
    for m in markups:
        units = m.get('coordinateUnits', 'mm')
        if isinstance(units, str) and units.lower() != 'mm':
            raise InvalidInputError(f'{path}: coordinate units {units!r}; only mm is supported.')
        space = _declared_space(m.get('coordinateSystem', 'LPS'), path)
        for j, cp in enumerate(m.get('controlPoints', []) or []):
            if cp.get('positionStatus', 'defined') != 'defined' or 'position' not in cp:
                continue  # a landmark that was never placed
            pos = [_float(v, path, 'position') for v in cp['position']]
            if len(pos) != 3:
                raise InvalidInputError(f'{path}: control point {j} has {len(pos)} '
                                        'coordinates, expected 3.')
            xyz.append(convert_space(pos, space, 'LPS'))
            names.append(str(cp.get('label') or cp.get('id') or f'p{len(names)}'))
            desc.append(str(cp.get('description', '') or ''))
    extra = {'description': desc} if any(desc) else {}
    return PointSet(np.array(xyz, dtype=np.float64).reshape(-1, 3), names=names, extra=extra)


def _write_mrk_json(points: PointSet, space: str) -> str:
    xyz = points.in_space(space)
    desc = points.extra.get('description')
    control = []
    for i, name in enumerate(points.names):
        control.append({
            'id': str(i + 1), 'label': name,
            'description': '' if desc is None else str(desc[i]),
            'associatedNodeID': '', 'position': [float(v) for v in xyz[i]],
            'orientation': [-1.0, -0.0, -0.0, -0.0, -1.0, -0.0, 0.0, 0.0, 1.0],
            'selected': True, 'locked': False, 'visibility': True,
            'positionStatus': 'defined'})
    doc = {'@schema': _MRK_SCHEMA, 'markups': [{
        'type': 'Fiducial', 'coordinateSystem': space, 'coordinateUnits': 'mm',
        'locked': False, 'fixedNumberOfControlPoints': False, 'labelFormat': '%N-%d',
        'lastUsedControlPointNumber': len(control), 'controlPoints': control,
        'measurements': []}]}
    return json.dumps(doc, indent=4) + '\n'


def _read_fcsv(path: str) -> PointSet:
    with open(path, newline='', encoding='utf-8-sig') as f:
        text = f.read().splitlines()
    space, columns, data = 'RAS', list(_FCSV_COLUMNS), []
    for ln in text:
        s = ln.strip()
        if not s:
            continue
        if s.startswith('#'):
            key, _, value = s.lstrip('#').partition('=')
            key = key.strip().lower()
            if key == 'coordinatesystem':
                space = _declared_space(value, path)
            elif key == 'columns':
                columns = [c.strip() for c in value.split(',')]
            continue
        data.append(ln)
    rows = list(csv.reader(data))
    for col in ('x', 'y', 'z'):
        if col not in columns:
            raise InvalidInputError(f'{path}: .fcsv columns {columns} lack {col!r}.')
    ix = [columns.index(c) for c in ('x', 'y', 'z')]
    xyz, names, desc = [], [], []
    for n, row in enumerate(rows):
        if len(row) <= max(ix):
            raise InvalidInputError(f'{path}: point row {n + 1} has {len(row)} fields, '
                                    f'expected {len(columns)} ({",".join(columns)}).')
        xyz.append([_float(row[i], path, 'coordinate') for i in ix])
        label = row[columns.index('label')] if 'label' in columns and \
            len(row) > columns.index('label') else ''
        names.append(label or (row[0] if row else f'p{n}'))
        d = row[columns.index('desc')] if 'desc' in columns and \
            len(row) > columns.index('desc') else ''
        desc.append(d)
    extra = {'description': desc} if any(desc) else {}
    lps = convert_space(np.array(xyz, dtype=np.float64).reshape(-1, 3), space, 'LPS')
    return PointSet(lps, names=names, extra=extra)


def _write_fcsv(points: PointSet, space: str) -> str:
    xyz = points.in_space(space)
    desc = points.extra.get('description')
    buf = io.StringIO()
    buf.write('# Markups fiducial file version = 4.11\n')
    buf.write(f'# CoordinateSystem = {space}\n')
    buf.write('# columns = ' + ','.join(_FCSV_COLUMNS) + '\n')
    writer = csv.writer(buf, lineterminator='\n')
    for i, name in enumerate(points.names):
        writer.writerow([f'vtkMRMLMarkupsFiducialNode_{i}'] + [_format_value(v) for v in xyz[i]]
                        + [0, 0, 0, 1, 1, 1, 0, name, '' if desc is None else desc[i], ''])
    return buf.getvalue()


# ---------------------------------------------------------------------------------- public
def read_points(path: PathLike, space: str = 'LPS', ndim: Optional[int] = None,
                min_points: int = 0) -> PointSet:
    """Read named points (``.csv``, ``.mrk.json``, ``.fcsv``) into a :class:`PointSet` (LPS).

    Args:
        path: the point file.
        space: ``'LPS'`` or ``'RAS'``, the convention of the coordinates in a ``.csv`` file
            without a ``# space =`` line. Slicer files (``.mrk.json``, ``.fcsv``) and CSV
            files written in RAS declare their own system, which wins.
        ndim: require 2D (``name,x,y``) or 3D points; ``None`` accepts both.
        min_points: require at least this many points (e.g. 1 for a query file: a
            header-only file is then an error, not an empty result).

    Raises:
        InvalidInputError: missing file, unknown extension, malformed content, points of
            another dimension than ``ndim``, fewer than ``min_points`` points.
    """
    path = os.fspath(path)
    space = check_space(space)
    fmt = _points_format(path)
    if not osp.isfile(path):
        raise InvalidInputError(
            f'{path}: point file not found (working directory {os.getcwd()}); check the path.')
    if fmt == '.csv':
        points = _read_csv(path, space)
    elif fmt == '.mrk.json':
        points = _read_mrk_json(path)
    else:
        points = _read_fcsv(path)
    got = points.xyz.shape[1]
    if ndim is not None and got != ndim:
        raise InvalidInputError(
            f'{path}: holds {got}D points ({"x, y" if got == 2 else "x, y, z"} columns) but '
            f'{ndim}D points are required; ' + ('add a z column (world mm).' if ndim == 3 else
                                                 'drop the z column.'))
    if len(points) < min_points:
        raise InvalidInputError(
            f'{path}: holds {len(points)} point(s), at least {min_points} needed; add one row '
            'per point under the header (name,x,y,z world mm).')
    return points


def write_points(points: PointSet, path: PathLike, space: str = 'LPS') -> str:
    """Write points atomically as ``.csv``, ``.mrk.json`` or ``.fcsv``.

    Args:
        points: the point set (LPS in memory).
        path: destination; the extension picks the format.
        space: convention of the written coordinates, ``'LPS'`` or ``'RAS'`` (Slicer files
            declare it in their header).

    Returns:
        The absolute path written.
    """
    path = osp.abspath(os.fspath(path))
    space = check_space(space)
    fmt = _points_format(path)
    if not isinstance(points, PointSet):
        points = PointSet(points)
    if points.xyz.shape[1] != 3 and (fmt != '.csv' or space != 'LPS'):
        raise InvalidInputError(
            f'{path}: 2D points can only be written to .csv with space="LPS" (Slicer formats '
            'and RAS conversion need 3D points).')
    if fmt == '.csv':
        text = _write_csv(points, space)
    elif fmt == '.mrk.json':
        text = _write_mrk_json(points, space)
    else:
        text = _write_fcsv(points, space)
    with atomic_path(path) as tmp:
        with open(tmp, 'w', encoding='utf-8', newline='') as f:
            f.write(text)
    return path



# ---------------------------------------------------------------------------------- pixels
def _csv_header(path: str) -> List[str]:
    with open(path, newline='', encoding='utf-8-sig') as f:
        for ln in f:
            if ln.strip() and not ln.lstrip().startswith('#'):
                return [h.strip().lower() for h in next(csv.reader([ln]))]
    return []


def is_pixel_points_file(path: PathLike) -> bool:
    """True for a ``.csv`` point file of pixel indices: its header has ``column`` and ``row``
    but no ``x`` / ``y`` columns (``name,column,row``)."""
    path = os.fspath(path)
    if not path.lower().endswith('.csv') or not osp.isfile(path):
        return False
    header = _csv_header(path)
    return all(c in header for c in PIXEL_COLUMNS) and not ('x' in header or 'y' in header)


def read_pixel_points(path: PathLike, min_points: int = 0) -> PointSet:
    """Read 2D pixel points (``.csv`` with header ``name,column,row``; further columns are
    kept in ``extra``; ``x`` / ``y`` columns, when present, are kept as extras too).

    Args:
        path: the point file.
        min_points: require at least this many points.

    Returns:
        :class:`PointSet` whose ``xyz`` is ``(N, 2)`` continuous pixel ``(column, row)``.

    Raises:
        InvalidInputError: missing file, not a ``.csv``, no ``column`` / ``row`` columns,
            malformed rows, fewer than ``min_points`` points.
    """
    path = os.fspath(path)
    if not path.lower().endswith('.csv'):
        raise InvalidInputError(f'{path}: pixel points are read from .csv files with the header '
                                'name,column,row.')
    if not osp.isfile(path):
        raise InvalidInputError(
            f'{path}: point file not found (working directory {os.getcwd()}); check the path.')
    with open(path, newline='', encoding='utf-8-sig') as f:
        lines = [ln for ln in f if ln.strip() and not ln.lstrip().startswith('#')]
    rows = list(csv.reader(lines))
    header = [h.strip() for h in rows[0]] if rows else []
    low = [h.lower() for h in header]
    if not all(c in low for c in PIXEL_COLUMNS):
        raise InvalidInputError(
            f'{path}: CSV header {header} lacks the pixel columns column,row; expected '
            'name,column,row (0-based pixel indices of the image).')
    cr, names, extra = _table_rows(path, header, low, rows[1:], PIXEL_COLUMNS)
    if len(cr) < min_points:
        raise InvalidInputError(
            f'{path}: holds {len(cr)} point(s), at least {min_points} needed; add one row '
            'per point under the header (name,column,row pixel indices).')
    return PointSet(cr, names=names, extra=extra)


def write_pixel_points(points: PointSet, path: PathLike) -> str:
    """Write 2D pixel points atomically as ``.csv``: ``name,column,row`` then the ``extra``
    columns.

    Args:
        points: a :class:`PointSet` whose ``xyz`` is ``(N, 2)`` pixel ``(column, row)``.
        path: destination ``.csv``.

    Returns:
        The absolute path written.
    """
    path = osp.abspath(os.fspath(path))
    if not path.lower().endswith('.csv'):
        raise InvalidInputError(f'{path}: pixel points are written to .csv files only.')
    if not isinstance(points, PointSet):
        points = PointSet(points)
    if points.xyz.shape[1] != 2:
        raise InvalidInputError(f'{path}: pixel points are 2D (column, row), got '
                                f'{points.xyz.shape[1]} coordinates per point.')
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator='\n')
    writer.writerow(['name', *PIXEL_COLUMNS] + list(points.extra))
    for i, name in enumerate(points.names):
        writer.writerow([name] + [_format_value(v) for v in points.xyz[i]]
                        + [_format_value(col[i]) for col in points.extra.values()])
    with atomic_path(path) as tmp:
        with open(tmp, 'w', encoding='utf-8', newline='') as f:
            f.write(buf.getvalue())
    return path
