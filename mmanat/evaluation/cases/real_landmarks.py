"""Benchmark ``real_landmarks``: rule-based anatomical landmarks of one real chest CT found in
the other (lung1 -> lung2 and lung2 -> lung1), see :mod:`mmanat.evaluation.landmarks`."""
from __future__ import annotations

import os.path as osp
from typing import List

from .landmark_case import LandmarkCase

__all__ = ['real_landmark_cases']


def real_landmark_cases(data_dir: str) -> List[LandmarkCase]:
    """The two directions between the sample CTs ``<data_dir>/ct/lung1.nrrd`` and
    ``lung2.nrrd``; points = the landmarks of ``lung{1,2}_landmarks.csv`` (generated when
    missing) named in both files.

    Raises:
        InvalidInputError: a sample CT is absent.
    """
    from ...fileio import read_volume
    from ..landmarks import SAMPLE_SCANS, sample_landmarks
    images = {s: read_volume(osp.join(data_dir, 'ct', f'{s}.nrrd'), modality='CT')
              for s in SAMPLE_SCANS}
    points = {s: sample_landmarks(s, data_dir) for s in SAMPLE_SCANS}
    cases = []
    for a, b in (SAMPLE_SCANS, SAMPLE_SCANS[::-1]):
        names = [n for n in points[a].names if n in points[b].names]
        pa = points[a].xyz[[points[a].names.index(n) for n in names]]
        pb = points[b].xyz[[points[b].names.index(n) for n in names]]
        cases.append(LandmarkCase(f'{a}->{b}', images[a], images[b], pa, pb, names=names,
                                  meta=dict(kind='real_landmarks', template=a, target=b)))
    return cases
