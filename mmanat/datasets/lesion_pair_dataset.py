"""Lesion pairs of the Deep Lesion Tracker (DLT) layout, for lesion-tracking tests."""
from __future__ import annotations

import os
import os.path as osp
from typing import List, Optional, Sequence

import numpy as np
from mmengine.dataset import BaseDataset

from ..registry import DATASETS
from ..utils.exceptions import InvalidInputError
from .dlt_format import read_dlt_json

__all__ = ['LesionPairDataset']


@DATASETS.register_module()
class LesionPairDataset(BaseDataset):
    """One item per lesion pair of a DLT-layout ``test.json`` (see
    :mod:`mmanat.datasets.dlt_format`): find the source lesion centre in the target image.

    The images named by each record (``"source"``, ``"target"``) are read from ``data_root``
    (default: the folder of the annotation file) with :func:`mmanat.fileio.read_volume`;
    voxel values ``(x, y, z)`` of the record become world LPS mm through the images'
    geometry.

    Each item (before ``pipeline``) is a dict for ``LandmarkTestLoop(pred_key='pred_center')``
    and ``LesionTrackingMetric`` (see ``configs/_base_/datasets/dlt_lesion_pairs.py``)::

        {'template': MedicalImage (source), 'target': MedicalImage (follow-up),
         'template_points': (1, 3) source lesion centre, world mm,
         'gt_center': (1, 3) target lesion centre, world mm,
         'gt_radius': (1,) target lesion radius in mm (DLT definition, LesionPair.radius_mm),
         'gt_box_min', 'gt_box_max': (1, 3) target box corners, world mm (None: no box),
         'names': [pair id], 'pair_name': pair id, 'sample_idx': i}

    Args:
        ann_file: the DLT-layout JSON file.
        data_root: folder of the images (default: the annotation's folder).
        modality: modality of every image (``'CT'`` for DeepLesion); ``None`` guesses.
        pipeline: transforms applied to each item.
    """

    METAINFO = dict(dataset_type='dlt_lesion_pairs')

    def __init__(self, ann_file: str, data_root: Optional[str] = None,
                 modality: Optional[str] = 'CT', pipeline: Sequence = (), **kwargs):
        if not ann_file or not osp.isfile(ann_file):
            raise InvalidInputError(
                f'{ann_file}: DLT lesion-pair file not found (working directory '
                f'{os.getcwd()}); give the test.json of the DLT layout.')
        self.modality = modality
        root = data_root if data_root is not None else osp.dirname(osp.abspath(ann_file))
        kwargs.setdefault('serialize_data', False)
        super().__init__(ann_file=osp.abspath(ann_file), data_root=root,
                         pipeline=list(pipeline), **kwargs)

    def load_data_list(self) -> List[dict]:
        """One dict per record: ``{'record': LesionPair, 'pair_name': key}``."""
        return [dict(record=rec, pair_name=rec.key) for rec in read_dlt_json(self.ann_file)]

    def prepare_data(self, idx: int) -> dict:
        """Read the two images of pair ``idx`` and run the pipeline on the item."""
        from ..fileio import read_volume
        info = self.get_data_info(idx)
        rec = info['record']
        source = read_volume(osp.join(self.data_root, rec.source), modality=self.modality)
        target = read_volume(osp.join(self.data_root, rec.target), modality=self.modality)
        results = dict(info)
        results.update(template=source, target=target,
                       template_points=rec.center_mm('source', image=source).reshape(1, 3),
                       gt_center=rec.center_mm('target', image=target).reshape(1, 3),
                       gt_radius=np.array([rec.radius_mm('target')]), names=[rec.key])
        box = rec.box_mm('target', image=target)  # None without a target box
        results.update(gt_box_min=None if box is None else box[0].reshape(1, 3),
                       gt_box_max=None if box is None else box[1].reshape(1, 3))
        return self.pipeline(results)
