"""Registered CT/MR pairs of one subject, from a CSV list (UAE-M stage 2, Bai et al., 2023)."""
from __future__ import annotations

import csv
import os.path as osp
from typing import List, Optional

import numpy as np
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

    Body masks (the released UAE-M recipe reads a precomputed mask per image, used to place
    the crop inside the MR body, to restrict queries to MR foreground and to confine the
    histogram shift; repository ``alibaba-damo-academy/self-supervised-anatomical-embedding-v2``,
    ``sam/datasets/dataset3dsam.py`` with ``mask_dir`` and ``LoadTioImageWithMask`` in
    ``sam/datasets/piplines/process3d_mask.py``): optional CSV columns ``ct_mask`` and
    ``mr_mask`` (paths, nonzero = body, on the CT grid) add ``'body_mask'`` (CT) and
    ``'pair_body_mask'`` (MR) as uint8 :class:`MedicalImage`; with ``body_masks='compute'``
    masks missing from the CSV are computed once per volume with
    :func:`~mmanat.structures.body.body_mask` (and cached with ``cache``).

    Args:
        ann_file: the CSV list.
        data_root: base folder of relative paths (default: the CSV's folder).
        cache: keep read volumes (and masks) in memory, per worker.
        body_masks: ``None`` (default: only the CSV mask columns, if any) or ``'compute'``.
        mask_min_object_size: ``min_object_size`` (pixels per slice) of computed masks.
    """

    METAINFO = dict(dataset_type='paired_ct_mr')

    def __init__(self, ann_file: str = '', data_root: str = '', cache: bool = True,
                 body_masks: Optional[str] = None, mask_min_object_size: int = 2000,
                 **kwargs):
        if body_masks not in (None, 'compute'):
            raise InvalidInputError(f'PairedVolumeDataset: body_masks={body_masks!r}; use None '
                                    "(CSV columns ct_mask / mr_mask only) or 'compute'.")
        self.cache = bool(cache)
        self.body_masks = body_masks
        self.mask_min_object_size = int(mask_min_object_size)
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
            for key in ('ct', 'mr', 'ct_mask', 'mr_mask'):
                if key.endswith('_mask') and not (row.get(key) or '').strip():
                    continue  # optional mask column, empty or absent
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

    def _body_mask(self, info: dict, key: str, image):
        """Body mask of ``image`` from the CSV column ``key`` or computed; None if neither."""
        path = info.get(key)
        if path is None and self.body_masks != 'compute':
            return None
        cache_key = ('mask', path or info[key[:2]])
        if cache_key in self._cache:
            return self._cache[cache_key]
        if path is not None:
            from ..fileio import read_volume
            mask = read_volume(path)
            if not mask.same_geometry(image, tol=1e-3):
                raise InvalidInputError(f'{path}: the body mask is not on the grid of '
                                        f'{info[key[:2]]}; resample it with the image.')
            mask = mask.with_array((mask.array > 0).astype(np.uint8), modality=None)
        else:
            from ..structures.body import body_mask
            arr = body_mask(image, min_object_size=self.mask_min_object_size)
            mask = image.with_array(arr.astype(np.uint8), modality=None)
        if self.cache:
            self._cache[cache_key] = mask
        return mask

    def prepare_data(self, idx: int):
        """Read the pair of row ``idx`` (and its body masks) and run the pipeline."""
        info = self.get_data_info(idx)
        ct, mr = self._read(info['ct'], 'CT'), self._read(info['mr'], 'MR')
        if not ct.same_geometry(mr, tol=1e-3):
            raise InvalidInputError(f'{info["mr"]}: not on the grid of {info["ct"]}; resample '
                                    'the MR onto the CT (registration output) first.')
        results = dict(image=ct, pair_image=mr, modality='CT', pair_modality='MR',
                       subject_id=info['subject_id'], img_path=info['ct'],
                       sample_idx=info['sample_idx'], img_shape=tuple(ct.array.shape))
        for key, res_key, image in (('ct_mask', 'body_mask', ct),
                                    ('mr_mask', 'pair_body_mask', mr)):
            mask = self._body_mask(info, key, image)
            if mask is not None:
                results[res_key] = mask
        return self.pipeline(results)
