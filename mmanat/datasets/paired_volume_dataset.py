"""Registered CT/MR pairs of one subject, from a CSV list (UAE-M stage 2, Bai et al., 2023)."""
from __future__ import annotations

import csv
import os.path as osp
from typing import List

from mmengine.dataset import BaseDataset

from ..registry import DATASETS
from ..utils.exceptions import InvalidInputError


@DATASETS.register_module()
class PairedVolumeDataset(BaseDataset):
    """Aligned CT/MR pairs: one row per subject of a CSV with columns ``ct,mr`` (optional
    ``subject_id``), paths relative to the CSV's folder (or ``data_root``).

    Both volumes of a row must lie on the same grid (resample the MR onto the CT with the
    registration, e.g. ``tools/register.py --out-dir D`` writes ``D/warped_moving.nii.gz``;
    ``tools/uae_m_recipe.py`` writes such lists). Each item (before ``pipeline``)::

        {'image': MedicalImage CT, 'pair_image': MedicalImage MR, 'modality': 'CT',
         'pair_modality': 'MR', 'subject_id': str, 'img_path': ct path, 'sample_idx': i}

    which is what :class:`~mmanat.datasets.transforms.RandomInterModalityCrop` expects.
    Volumes are read on every access (``cache=True`` keeps them in memory, per worker).
    """

    METAINFO = dict(dataset_type='paired_ct_mr')

    def __init__(self, ann_file: str = '', data_root: str = '', cache: bool = True, **kwargs):
        self.cache = bool(cache)
        self._cache = {}
        super().__init__(ann_file=ann_file, data_root=data_root, **kwargs)

    def load_data_list(self) -> List[dict]:
        """Rows of the CSV with resolved paths (checked to exist)."""
        path = self.ann_file
        if not path or not osp.isfile(path):
            raise InvalidInputError(f'PairedVolumeDataset: list file {path!r} not found; give '
                                    'a CSV with columns ct,mr (tools/uae_m_recipe.py writes '
                                    'one per round).')
        base = self.data_root or osp.dirname(path)
        with open(path, newline='', encoding='utf-8') as fh:
            rows = list(csv.DictReader(fh))
        if not rows or not {'ct', 'mr'} <= set(rows[0]):
            raise InvalidInputError(f'{path}: needs a header with columns ct,mr and at least '
                                    f'one row (got columns {list(rows[0]) if rows else []}).')
        out = []
        for i, row in enumerate(rows):
            item = {}
            for key in ('ct', 'mr'):
                p = row[key] if osp.isabs(row[key]) else osp.join(base, row[key])
                if not osp.isfile(p):
                    raise InvalidInputError(f'{path}, row {i + 2}: {key} file {p} not found.')
                item[key] = p
            item['subject_id'] = row.get('subject_id') or osp.basename(item['ct'])
            out.append(item)
        return out

    def _read(self, path: str, modality: str):
        from ..fileio import read_volume
        if path in self._cache:
            return self._cache[path]
        img = read_volume(path, modality=modality)
        if self.cache:
            self._cache[path] = img
        return img

    def prepare_data(self, idx: int):
        """Read the pair of row ``idx`` and run the pipeline."""
        info = self.get_data_info(idx)
        ct, mr = self._read(info['ct'], 'CT'), self._read(info['mr'], 'MR')
        if not ct.same_geometry(mr, tol=1e-3):
            raise InvalidInputError(f'{info["mr"]}: not on the grid of {info["ct"]}; resample '
                                    'the MR onto the CT (registration output) first.')
        results = dict(image=ct, pair_image=mr, modality='CT', pair_modality='MR',
                       subject_id=info['subject_id'], img_path=info['ct'],
                       sample_idx=info['sample_idx'], img_shape=tuple(ct.array.shape))
        return self.pipeline(results)
