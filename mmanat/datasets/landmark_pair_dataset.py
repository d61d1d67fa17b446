"""Landmark pairs from files: a template and a target volume with their point files."""
from __future__ import annotations

import json
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence

import numpy as np
from mmengine.dataset import BaseDataset

from ..registry import DATASETS
from ..utils.exceptions import InvalidInputError

__all__ = ['LandmarkPairDataset', 'match_named_points']

_REQUIRED = ('template', 'target', 'template_points', 'target_points')


def match_named_points(template_points, target_points, src: str = '<pair>'):
    """The points named in both sets, in the template's order.

    Args:
        template_points, target_points: :class:`~mmanat.structures.PointSet` (world LPS mm).
            Point files without names get ``p0, p1, ...``, so unnamed sets pair by order.
        src: the pair, for error messages.

    Returns:
        ``(template (N, 3), target (N, 3), names)``.

    Raises:
        InvalidInputError: when no name is shared.
    """
    where = {nm: i for i, nm in enumerate(target_points.names)}
    names = [nm for nm in template_points.names if nm in where]
    if not names:
        raise InvalidInputError(
            f'{src}: the template and target point files share no point name (template: '
            f'{template_points.names[:5]}..., target: {target_points.names[:5]}...); name '
            'the points alike, or list them in the same order without names.')
    t_idx = [template_points.names.index(nm) for nm in names]
    g_idx = [where[nm] for nm in names]
    return (np.asarray(template_points.xyz, np.float64)[t_idx].reshape(-1, 3),
            np.asarray(target_points.xyz, np.float64)[g_idx].reshape(-1, 3), names)


@DATASETS.register_module()
class LandmarkPairDataset(BaseDataset):
    """Landmark pairs read from files, for mmengine's test loop (``LandmarkTestLoop``).

    The annotation file is JSON: a list of pairs (or ``{"pairs": [...]}``), each::

        {"template": "ct/lung1.nrrd", "target": "ct/lung2.nrrd",
         "template_points": "points/lung1.csv", "target_points": "points/lung2.csv",
         "name": "lung1->lung2",            # optional
         "template_modality": "CT", "target_modality": "CT"}   # optional

    Paths are relative to ``data_root`` (default: the folder of the annotation file). Images
    are read with :func:`mmanat.fileio.read_volume`, points with
    :func:`mmanat.fileio.read_points` (``.csv``, ``.mrk.json``, ``.fcsv``; world LPS mm) and
    paired by name (:func:`match_named_points`). Images are read when an item is requested.

    Each item (before ``pipeline``) is a dict::

        {'template': MedicalImage, 'target': MedicalImage,
         'template_points': (N, 3) world LPS mm, 'gt_points': (N, 3) world LPS mm,
         'names': [...], 'pair_name': str, 'sample_idx': i}

    Args:
        ann_file: the JSON annotation file.
        data_root: folder the paths are relative to (default: the annotation's folder).
        points_space: ``'LPS'`` or ``'RAS'``: convention of ``.csv`` point files.
        pipeline: transforms applied to each item.
    """

    METAINFO = dict(dataset_type='landmark_pairs')

    def __init__(self, ann_file: str, data_root: Optional[str] = None,
                 points_space: str = 'LPS', pipeline: Sequence = (), **kwargs):
        if not ann_file or not osp.isfile(ann_file):
            raise InvalidInputError(
                f'{ann_file}: landmark-pair annotation not found (working directory '
                f'{os.getcwd()}); give a JSON list of {{"template", "target", '
                '"template_points", "target_points"}} entries.')
        self.points_space = points_space
        root = data_root if data_root is not None else osp.dirname(osp.abspath(ann_file))
        kwargs.setdefault('serialize_data', False)
        super().__init__(ann_file=osp.abspath(ann_file), data_root=root,
                         pipeline=list(pipeline), **kwargs)

    def load_data_list(self) -> List[dict]:
        """Parse the annotation file into one dict of paths per pair."""
        try:
            with open(self.ann_file, encoding='utf-8') as f:
                data = json.load(f)
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise InvalidInputError(f'{self.ann_file}: not valid JSON ({err}).') from None
        if isinstance(data, dict):
            data = data.get('pairs')
        if not isinstance(data, list) or not data:
            raise InvalidInputError(
                f'{self.ann_file}: expected a non-empty list of pairs (or {{"pairs": [...]}}).')
        out = []
        for i, entry in enumerate(data):
            missing = [k for k in _REQUIRED if not isinstance(entry, dict) or k not in entry]
            if missing:
                raise InvalidInputError(f'{self.ann_file}: pair {i} lacks {missing}.')
            info: Dict = {k: self._path(entry[k]) for k in _REQUIRED}
            info['pair_name'] = str(entry.get('name', f'pair{i}'))
            info['template_modality'] = entry.get('template_modality')
            info['target_modality'] = entry.get('target_modality')
            out.append(info)
        return out

    def _path(self, p: str) -> str:
        return p if osp.isabs(p) else osp.join(self.data_root, p)

    def prepare_data(self, idx: int) -> dict:
        """Read pair ``idx`` (two volumes, two point files) and run the pipeline on it."""
        from ..fileio import read_points, read_volume
        info = self.get_data_info(idx)
        template = read_volume(info['template'], modality=info['template_modality'])
        target = read_volume(info['target'], modality=info['target_modality'])
        t_pts = read_points(info['template_points'], space=self.points_space)
        g_pts = read_points(info['target_points'], space=self.points_space)
        tp, gp, names = match_named_points(t_pts, g_pts, src=info['pair_name'])
        results = dict(info)
        results.update(template=template, target=target, template_points=tp, gt_points=gp,
                       names=names)
        return self.pipeline(results)
