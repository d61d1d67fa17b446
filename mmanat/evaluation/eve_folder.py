"""Real radiographs with landmarks for the Eve property measures
(:func:`mmanat.evaluation.eve_properties.measure_eve_properties`, Adam v1 / v2): a folder of
radiographs and one landmark CSV, presented like
:class:`~mmanat.datasets.SyntheticRadiographDataset` (``len``, ``get_data_info``,
``render``)."""
from __future__ import annotations

import csv
import os
import os.path as osp
from typing import Dict, List, Optional

import numpy as np

from ..utils.exceptions import InvalidInputError


def read_landmark_table(path: str) -> Dict[str, Dict[str, tuple]]:
    """``image,name,column,row`` CSV (pixels of the image file; one row per landmark and
    image, ``image`` = file name or stem) -> ``{image stem: {name: (column, row)}}``."""
    if not osp.isfile(path):
        raise InvalidInputError(f'landmark file {path} not found; give a CSV with the header '
                                'image,name,column,row (pixels).')
    with open(path, newline='', encoding='utf-8') as fh:
        rows = [r for r in csv.reader(fh) if r and any(v.strip() for v in r)]
    header = [v.strip().lower() for v in rows[0]] if rows else []
    if not {'image', 'name', 'column', 'row'} <= set(header):
        raise InvalidInputError(f'landmark file {path}: header {rows[0] if rows else []} needs '
                                'the columns image,name,column,row (pixels).')
    ii, iname, ic, ir = (header.index(k) for k in ('image', 'name', 'column', 'row'))
    out: Dict[str, Dict[str, tuple]] = {}
    for k, r in enumerate(rows[1:], start=2):
        try:
            xy = (float(r[ic]), float(r[ir]))
        except (ValueError, IndexError):
            raise InvalidInputError(f'landmark file {path}, line {k}: {r} has no numeric '
                                    'column,row.') from None
        stem = osp.basename(r[ii].strip()).split('.')[0]
        out.setdefault(stem, {})[r[iname].strip()] = xy
    return out


class LandmarkRadiographFolder:
    """Radiographs of ``folder`` that have landmarks in ``landmarks_csv``.

    Each image is read with :func:`mmanat.fileio.read_xray`, scaled to ``[0, 1]`` as in
    training, zero-padded to a square (air, centred) and resized to ``img_size`` pixels (the
    region layout of the compositionality measure needs square images); its landmarks move
    with it. Landmarks missing for an image are invalid there.

    Args:
        folder: folder of radiographs (PNG/JPEG/DICOM/2D NIfTI...).
        landmarks_csv: ``image,name,column,row`` table (see :func:`read_landmark_table`).
        img_size: side of the square images (default: the largest side, no resizing).
    """

    def __init__(self, folder: str, landmarks_csv: str, img_size: Optional[int] = 256):
        if not osp.isdir(folder):
            raise InvalidInputError(f'{folder}: not a folder of radiographs.')
        table = read_landmark_table(landmarks_csv)
        files = {osp.basename(f).split('.')[0]: osp.join(folder, f)
                 for f in sorted(os.listdir(folder)) if not f.startswith('.')}
        self.items: List[dict] = [dict(seed=i, stem=s, path=files[s])
                                  for i, s in enumerate(sorted(set(files) & set(table)))]
        if len(self.items) < 2:
            raise InvalidInputError(f'{folder}: fewer than 2 images have landmarks in '
                                    f'{landmarks_csv} (matched by file stem); locality needs '
                                    'at least 2.')
        self.table = table
        self.names = sorted({n for s in self.items for n in table[s['stem']]})
        self.img_size = img_size

    def __len__(self) -> int:
        return len(self.items)

    def get_data_info(self, idx: int) -> dict:
        """``dict(seed=idx, stem, path)``."""
        return self.items[idx]

    def render(self, seed: int) -> dict:
        """Image ``seed`` as ``dict(img, landmarks, landmark_names, landmark_valid)``."""
        import cv2

        from ..datasets.radiograph_dataset import to_unit_range
        from ..fileio import read_xray
        info = self.items[int(seed)]
        img = to_unit_range(read_xray(info['path']).array).astype(np.float32)
        h, w = img.shape
        side = max(h, w)
        top, left = (side - h) // 2, (side - w) // 2
        sq = np.zeros((side, side), np.float32)
        sq[top:top + h, left:left + w] = img
        size = int(self.img_size or side)
        scale = size / side
        if size != side:
            sq = cv2.resize(sq, (size, size), interpolation=cv2.INTER_AREA if scale < 1
                            else cv2.INTER_LINEAR)
        marks = self.table[info['stem']]
        lm = np.zeros((len(self.names), 2), np.float32)
        valid = np.zeros(len(self.names), bool)
        for k, name in enumerate(self.names):
            if name in marks:
                c, r = marks[name]
                lm[k] = ((c + left + 0.5) * scale - 0.5, (r + top + 0.5) * scale - 0.5)
                valid[k] = True
        inside = np.all((lm >= -0.5) & (lm <= size - 0.5), axis=1)
        return dict(img=sq, landmarks=lm, landmark_names=list(self.names),
                    landmark_valid=valid & inside, seed=int(seed))
