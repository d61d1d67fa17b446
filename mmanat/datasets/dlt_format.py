"""Reader/writer of the lesion-pair layout of the Deep Lesion Tracker (DLT) project and the
DeepLesion "DLS" evaluation built on it (the evaluation itself:
:func:`mmanat.evaluation.dlt_format.evaluate_dlt`).

Layout (``data/test.json`` of https://github.com/JimmyCai91/DLT, CVPR 2021; CC-BY-SA-4.0): one
JSON object whose keys are pair ids (``"0001"``, ...) and whose values hold

* ``"source"``, ``"target"``: file names of the source (template) and target (follow-up)
  sub-volumes (NIfTI);
* ``"source box"``, ``"target box"``: ``[x, y, z, w, h, d]`` - corner voxel index and size
  (voxels) of the lesion box;
* ``"source center"``, ``"target center"``: ``[x, y, z]`` voxel index of the lesion centre;
* ``"source spacing"``, ``"target spacing"``: ``[sx, sy, sz]`` in mm;
* optional ``"source recist diameter"`` / ``"target recist diameter"``: ``[long, short]`` in
  pixels; ``"predict target center"`` / ``"predict target box"`` for results, and further keys
  (RECIST slice and coordinates, ``"processing time"``, ...), which are kept as they are.

DLT's evaluation also accepts a list of such records, or ``{"results": [...]}``; so does
:func:`read_dlt_json`.

Voxel indices ``(x, y, z)`` are taken as the ITK index ``(i, j, k)`` of the named file. World
millimetres come either from the image geometry (:meth:`MedicalImage.index_to_world`; exact for
any orientation and origin) or, without the image, from the spacing alone (``index * spacing``,
the frame the DLT evaluation uses; distances are the same for axis-aligned images).
"""
from __future__ import annotations

import csv
import json
import os
import os.path as osp
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Sequence, Union

import numpy as np

from ..fileio.atomic import atomic_path
from ..utils.exceptions import InvalidInputError

KEYS = {
    'source': 'source', 'target': 'target',
    'source_box': 'source box', 'target_box': 'target box',
    'source_center': 'source center', 'target_center': 'target center',
    'source_spacing': 'source spacing', 'target_spacing': 'target spacing',
    'source_diameter': 'source recist diameter', 'target_diameter': 'target recist diameter',
    'pred_center': 'predict target center', 'pred_box': 'predict target box',
}
REQUIRED = ('source', 'target', 'source center', 'target center', 'source spacing',
            'target spacing')
_LENGTHS = {'source_box': 6, 'target_box': 6, 'source_center': 3, 'target_center': 3,
            'source_spacing': 3, 'target_spacing': 3, 'pred_center': 3, 'pred_box': 6}


def _vector(value, n: Optional[int], what: str, src: str) -> Optional[np.ndarray]:
    if value is None:
        return None
    try:
        arr = np.asarray(value, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise InvalidInputError(f'{src}: {what} = {value!r} is not a list of numbers.') from None
    if n is not None and arr.size != n:
        raise InvalidInputError(
            f'{src}: {what} has {arr.size} values {arr.tolist()}, expected {n}.')
    if not np.all(np.isfinite(arr)):
        raise InvalidInputError(f'{src}: {what} = {arr.tolist()} is not finite.')
    return arr


@dataclass
class LesionPair:
    """One lesion pair of a DLT-layout file (all voxel values in the named files' indices).

    Attributes:
        key: the pair id (``"0001"``).
        source, target: image file names.
        source_center, target_center: ``(3,)`` voxel ``(x, y, z)``.
        source_spacing, target_spacing: ``(3,)`` mm.
        source_box, target_box: ``(6,)`` ``[x, y, z, w, h, d]`` or ``None``.
        source_diameter, target_diameter: RECIST ``[long, short]`` in pixels or ``None``.
        pred_center: predicted target centre (voxel) or ``None``.
        pred_box: predicted target box or ``None``.
        extra: every other key of the record, kept for writing back.
    """

    key: str
    source: str
    target: str
    source_center: np.ndarray
    target_center: np.ndarray
    source_spacing: np.ndarray
    target_spacing: np.ndarray
    source_box: Optional[np.ndarray] = None
    target_box: Optional[np.ndarray] = None
    source_diameter: Optional[np.ndarray] = None
    target_diameter: Optional[np.ndarray] = None
    pred_center: Optional[np.ndarray] = None
    pred_box: Optional[np.ndarray] = None
    extra: Dict = field(default_factory=dict)

    def __post_init__(self):
        src = f'lesion pair {self.key!r}'
        for name, n in _LENGTHS.items():
            setattr(self, name, _vector(getattr(self, name), n, KEYS[name], src))
        for name in ('source_diameter', 'target_diameter'):
            setattr(self, name, _vector(getattr(self, name), None, KEYS[name], src))
        for name in ('source_spacing', 'target_spacing'):
            if np.any(getattr(self, name) <= 0):
                raise InvalidInputError(f'{src}: {KEYS[name]} must be > 0 mm, got '
                                        f'{getattr(self, name).tolist()}.')

    # ----------------------------------------------------------------- lesion size
    def radius_mm(self, which: str = 'target') -> float:
        """Lesion radius in mm as DLT defines it: ``max(recist diameter) / 2 * spacing[0]``;
        without a RECIST diameter, half of the larger in-plane side of the box in mm."""
        diam = getattr(self, f'{which}_diameter')
        spacing = getattr(self, f'{which}_spacing')
        if diam is not None and diam.size:
            return float(diam.max() / 2.0 * spacing[0])
        box = getattr(self, f'{which}_box')
        if box is None:
            raise InvalidInputError(
                f'lesion pair {self.key!r}: neither "{which} recist diameter" nor "{which} box"'
                ' is given, so the lesion radius (needed for CPM) is unknown.')
        return float(max(abs(box[3]) * spacing[0], abs(box[4]) * spacing[1]) / 2.0)

    # ----------------------------------------------------------------- geometry
    def center_mm(self, which: str = 'target', image=None) -> np.ndarray:
        """The ``which`` ('source'/'target') centre in mm (see :func:`voxel_to_mm`)."""
        return voxel_to_mm(getattr(self, f'{which}_center'),
                           spacing=getattr(self, f'{which}_spacing'), image=image)

    def box_mm(self, which: str = 'target', image=None):
        """``(min_mm, max_mm)`` corners of the ``which`` box (see :func:`voxel_to_mm`)."""
        box = getattr(self, f'{which}_box')
        if box is None:
            return None
        spacing = getattr(self, f'{which}_spacing')
        corners = np.array(np.meshgrid(*[[box[i], box[i] + box[i + 3]] for i in range(3)],
                                       indexing='ij')).reshape(3, -1).T
        mm = voxel_to_mm(corners, spacing=spacing, image=image)
        return mm.min(0), mm.max(0)

    # ----------------------------------------------------------------- serialisation
    def to_dict(self) -> Dict:
        """The record as written in a DLT-layout file (unset optional keys omitted)."""
        out = {}
        for attr, key in KEYS.items():
            value = getattr(self, attr)
            if value is None:
                continue
            out[key] = value if isinstance(value, str) else [float(v) for v in value]
        for key, value in self.extra.items():
            out.setdefault(key, value)
        return out

    @classmethod
    def from_dict(cls, key: str, record: Dict, src: str = '<dict>') -> 'LesionPair':
        """Parse one record; ``src`` names the file in error messages."""
        if not isinstance(record, dict):
            raise InvalidInputError(f'{src}: entry {key!r} is not an object with lesion-pair '
                                    'keys.')
        missing = [k for k in REQUIRED if k not in record]
        if missing:
            raise InvalidInputError(
                f'{src}: pair {key!r} lacks {missing}; a DLT-layout record needs {REQUIRED} '
                '(see https://github.com/JimmyCai91/DLT data/test.json).')
        kwargs = {attr: record.get(k) for attr, k in KEYS.items()}
        extra = {k: v for k, v in record.items() if k not in KEYS.values()}
        try:
            return cls(key=str(key), extra=extra, **kwargs)
        except InvalidInputError as err:
            raise InvalidInputError(f'{src}: {err}') from None


# ------------------------------------------------------------------- voxel <-> mm
def voxel_to_mm(voxel, spacing=None, image=None) -> np.ndarray:
    """Voxel index ``(x, y, z)`` (ITK order) -> mm.

    With ``image`` (a :class:`~mmanat.structures.MedicalImage`): world LPS mm through its
    geometry. Otherwise ``voxel * spacing`` (the DLT frame: axis-aligned, origin at voxel 0).
    """
    voxel = np.asarray(voxel, dtype=np.float64)
    if image is not None:
        return image.index_to_world(voxel)
    if spacing is None:
        raise InvalidInputError('voxel_to_mm needs the spacing or the image.')
    return voxel * np.asarray(spacing, dtype=np.float64)


def mm_to_voxel(points_mm, spacing=None, image=None) -> np.ndarray:
    """Inverse of :func:`voxel_to_mm` (continuous voxel indices)."""
    points_mm = np.asarray(points_mm, dtype=np.float64)
    if image is not None:
        return image.world_to_index(points_mm)
    if spacing is None:
        raise InvalidInputError('mm_to_voxel needs the spacing or the image.')
    return points_mm / np.asarray(spacing, dtype=np.float64)


# ------------------------------------------------------------------- files
def _load_json(path: str):
    if not osp.isfile(path):
        raise InvalidInputError(f'{path}: file not found (working directory {os.getcwd()}).')
    try:
        with open(path, encoding='utf-8') as f:
            return json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InvalidInputError(f'{path}: not valid JSON ({err}); expected the DLT test.json '
                                'layout.') from None


def _records_of(data, src: str):
    """(key, record) pairs from a dict keyed by id, a list, or ``{"results": [...]}``."""
    if isinstance(data, dict) and isinstance(data.get('results'), list):
        data = data['results']
    if isinstance(data, list):
        return [(str(r.get('id', f'{i + 1:04d}')) if isinstance(r, dict) else str(i), r)
                for i, r in enumerate(data)]
    if isinstance(data, dict):
        return [(str(k), v) for k, v in data.items()]
    raise InvalidInputError(f'{src}: top level is a {type(data).__name__}; expected an object '
                            'keyed by pair id (DLT test.json) or a list of records.')


def read_dlt_json(path: Union[str, os.PathLike]) -> List[LesionPair]:
    """Read a DLT-layout lesion-pair file (``test.json``) into :class:`LesionPair` records,
    in file order."""
    path = os.fspath(path)
    records = [LesionPair.from_dict(k, r, src=path)
               for k, r in _records_of(_load_json(path), path)]
    if not records:
        raise InvalidInputError(f'{path}: no lesion pairs found.')
    return records


def write_dlt_json(records: Iterable[LesionPair], path: Union[str, os.PathLike]) -> str:
    """Write records in the DLT layout (an object keyed by pair id), atomically."""
    path = os.fspath(path)
    data = {}
    for rec in records:
        if rec.key in data:
            raise InvalidInputError(f'duplicate lesion pair id {rec.key!r} while writing {path}.')
        data[rec.key] = rec.to_dict()
    with atomic_path(path) as tmp:
        with open(tmp, 'w', encoding='utf-8') as f:
            json.dump(data, f, indent=1)
            f.write('\n')
    return path


def read_predictions(path: Union[str, os.PathLike]) -> Dict[str, Dict]:
    """Read predicted target centres.

    Accepted files:

    * JSON in the DLT layout (records with ``"predict target center"``, voxels of the target
      image), or ``{id: [x, y, z]}`` (voxels), or ``{id: {"predict target center mm": [...]}}``
      (world mm);
    * CSV with a column ``id`` (or ``key``) and either ``x, y, z`` (target voxel indices) or
      ``x_mm, y_mm, z_mm`` (world LPS mm of the target image).

    Returns:
        ``{id: {'voxel': (3,)}}`` or ``{id: {'mm': (3,)}}``.
    """
    path = os.fspath(path)
    out: Dict[str, Dict] = {}
    if path.lower().endswith('.csv'):
        if not osp.isfile(path):
            raise InvalidInputError(f'{path}: file not found (working directory {os.getcwd()}).')
        with open(path, newline='', encoding='utf-8') as f:
            rows = list(csv.DictReader(f))
        if not rows:
            raise InvalidInputError(f'{path}: no rows.')
        cols = set(rows[0])
        idcol = 'id' if 'id' in cols else 'key' if 'key' in cols else None
        if idcol is None:
            raise InvalidInputError(f'{path}: needs an "id" column (the pair id); has {cols}.')
        if {'x_mm', 'y_mm', 'z_mm'} <= cols:
            kind, names = 'mm', ('x_mm', 'y_mm', 'z_mm')
        elif {'x', 'y', 'z'} <= cols:
            kind, names = 'voxel', ('x', 'y', 'z')
        else:
            raise InvalidInputError(f'{path}: needs columns x,y,z (voxels) or x_mm,y_mm,z_mm '
                                    f'(world mm); has {sorted(cols)}.')
        for row in rows:
            out[str(row[idcol]).strip()] = {
                kind: _vector([row[n] for n in names], 3, 'prediction', f'{path} id '
                              f'{row[idcol]}')}
        return out
    for key, rec in _records_of(_load_json(path), path):
        src = f'{path} id {key}'
        if isinstance(rec, (list, tuple)):
            out[key] = {'voxel': _vector(rec, 3, 'prediction', src)}
        elif isinstance(rec, dict) and 'predict target center mm' in rec:
            out[key] = {'mm': _vector(rec['predict target center mm'], 3, 'prediction', src)}
        elif isinstance(rec, dict) and 'predict target center' in rec:
            out[key] = {'voxel': _vector(rec['predict target center'], 3, 'prediction', src)}
        else:
            raise InvalidInputError(f'{src}: no "predict target center" in this record.')
    return out


def write_predictions(predictions: Dict[str, Sequence[float]], path: Union[str, os.PathLike],
                      kind: str = 'voxel') -> str:
    """Write ``{id: (x, y, z)}`` as a prediction file (JSON or CSV by extension), atomically;
    ``kind`` is ``'voxel'`` (target voxel indices) or ``'mm'`` (world mm)."""
    path = os.fspath(path)
    if kind not in ('voxel', 'mm'):
        raise InvalidInputError(f'kind must be "voxel" or "mm", got {kind!r}.')
    with atomic_path(path) as tmp:
        with open(tmp, 'w', encoding='utf-8', newline='') as f:
            if path.lower().endswith('.csv'):
                w = csv.writer(f)
                w.writerow(['id'] + (['x', 'y', 'z'] if kind == 'voxel'
                                     else ['x_mm', 'y_mm', 'z_mm']))
                for key, p in predictions.items():
                    w.writerow([key] + [f'{float(v):.4f}' for v in p])
            else:
                name = 'predict target center' + (' mm' if kind == 'mm' else '')
                json.dump({k: {name: [float(v) for v in p]} for k, p in predictions.items()},
                          f, indent=1)
                f.write('\n')
    return path


def attach_predictions(records: List[LesionPair], predictions: Dict[str, Dict],
                       image_dir: Optional[str] = None, src: str = 'predictions'):
    """Set ``pred_center`` (target voxels) on each record from :func:`read_predictions`.

    World-mm predictions are converted through the target image's geometry, read from
    ``image_dir`` (only its header is needed). A record without a prediction keeps
    ``pred_center = None`` (a miss).
    """
    images = {}
    for rec in records:
        pred = predictions.get(rec.key)
        if pred is None:
            continue
        if 'voxel' in pred:
            rec.pred_center = np.asarray(pred['voxel'], dtype=np.float64)
            continue
        if image_dir is None:
            raise InvalidInputError(
                f'{src}: prediction of pair {rec.key!r} is in world mm; give the folder of the '
                'target images (--image-dir) to convert it to voxels, or write voxel indices.')
        if rec.target not in images:
            from ..fileio import read_image
            images[rec.target] = read_image(osp.join(image_dir, rec.target))
        rec.pred_center = images[rec.target].world_to_index(pred['mm'])
    return records
