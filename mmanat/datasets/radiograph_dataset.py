"""A dataset of 2D radiographs (chest X-rays) listed in a file or found in a folder."""
from __future__ import annotations

import os
import os.path as osp
from typing import Dict, List, Optional, Sequence

import numpy as np
from mmengine.dataset import BaseDataset

from ..fileio.formats import PICTURE_EXTENSIONS
from ..registry import DATASETS
from ..utils.exceptions import InvalidInputError

#: file extensions picked up when ``ann_file`` is a folder (the 2D picture formats)
RADIOGRAPH_EXTENSIONS = PICTURE_EXTENSIONS

#: ChestX-ray14 label names, in the order of its official multi-hot list files
CHESTXRAY14_CLASSES = ('Atelectasis', 'Cardiomegaly', 'Effusion', 'Infiltration', 'Mass',
                       'Nodule', 'Pneumonia', 'Pneumothorax', 'Consolidation', 'Edema',
                       'Emphysema', 'Fibrosis', 'Pleural_Thickening', 'Hernia')


def to_unit_range(arr: np.ndarray) -> np.ndarray:
    """Map a radiograph's pixel values to ``float32`` in ``[0, 1]``.

    ``uint8`` images are divided by 255; other types are scaled between their 0.5th and 99.5th
    percentiles (estimated on every 4th pixel) and clipped, which copes with 12-16 bit DICOM.
    """
    arr = np.asarray(arr)
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) * np.float32(1.0 / 255.0)
    sub = arr[::4, ::4] if arr.ndim == 2 and min(arr.shape) >= 8 else arr
    lo, hi = np.percentile(sub.astype(np.float32), (0.5, 99.5))
    if not hi > lo:
        lo, hi = float(arr.min()), float(arr.max())
    out = (arr.astype(np.float32) - np.float32(lo)) / np.float32(max(hi - lo, 1e-6))
    return np.clip(out, 0.0, 1.0, out=out)


def resize_longer_side(img: np.ndarray, size: Optional[int]) -> np.ndarray:
    """Resize a 2D image (area interpolation) so that its longer side is ``size`` pixels."""
    if size is None:
        return img
    import cv2
    h, w = img.shape
    scale = float(size) / max(h, w)
    if abs(scale - 1.0) < 1e-9:
        return img
    new = (max(1, int(round(w * scale))), max(1, int(round(h * scale))))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return cv2.resize(img, new, interpolation=interp)


@DATASETS.register_module()
class RadiographDataset(BaseDataset):
    """2D radiographs from an image list file or a folder (PNG, JPEG, DICOM).

    ``ann_file`` is either

    * a text file with one image per line in ChestX-ray14's ``name label...`` format:
      ``00000001_000.png 0 1 0 ...`` (multi-hot numbers), or ``00000001_000.png
      Cardiomegaly|Effusion`` (label names joined by ``|``, mapped through ``classes``;
      ``No Finding`` = all zeros), or just ``name`` (no labels). Names are relative to
      ``data_root``/``data_prefix['img_path']``; blank lines and ``#`` comments are skipped;
    * a folder: every file with an extension in :data:`RADIOGRAPH_EXTENSIONS` below it
      (sorted), without labels.

    Each item (before ``pipeline``)::

        {'img': float32 (H, W) in [0, 1] (dark air), 'img_path': str, 'ori_shape': (H0, W0),
         'img_shape': (H, W), 'spacing': (sx, sy) mm after resizing, 'gt_label': float32
         multi-hot (C,) when labels exist, 'sample_idx': i}

    Args:
        ann_file: list file or folder.
        classes: label names (default ChestX-ray14's 14) for name-style labels and metainfo.
        load_size: resize every image so its longer side has this many pixels (None: keep).
        cache_images: keep loaded (resized) images in memory. The cache lives in the process
            that loads them, so with dataloader workers use ``persistent_workers=True``.
        label_fraction: keep only this fraction of the items (a deterministic, seeded subset;
            for the 1 / 10 / 100 % label protocols).
        fraction_seed: seed of that subset.
        data_root, data_prefix, pipeline, test_mode, lazy_init, ...: see
            :class:`mmengine.dataset.BaseDataset`.
    """

    METAINFO = dict(classes=CHESTXRAY14_CLASSES)

    def __init__(self, ann_file: str = '', classes: Optional[Sequence[str]] = None,
                 load_size: Optional[int] = None, cache_images: bool = False,
                 label_fraction: float = 1.0, fraction_seed: int = 0,
                 data_prefix: Optional[dict] = None, metainfo: Optional[dict] = None,
                 **kwargs):
        if not 0.0 < float(label_fraction) <= 1.0:
            raise InvalidInputError(f'label_fraction must be in (0, 1], got {label_fraction}.')
        self.load_size = None if load_size is None else int(load_size)
        self.cache_images = bool(cache_images)
        self.label_fraction = float(label_fraction)
        self.fraction_seed = int(fraction_seed)
        self._cache: Dict[int, tuple] = {}
        metainfo = dict(metainfo or {})
        if classes is not None:
            metainfo['classes'] = tuple(classes)
        super().__init__(ann_file=ann_file, data_prefix=data_prefix or dict(img_path=''),
                         metainfo=metainfo, **kwargs)

    # --------------------------------------------------------------------------- listing
    def _img_root(self) -> str:
        prefix = self.data_prefix.get('img_path', '') or ''
        return prefix if osp.isabs(prefix) else osp.join(self.data_root or '', prefix)

    def load_data_list(self) -> List[dict]:
        """Read the list file (or scan the folder) into ``[{'img_path', 'gt_label'?}]``."""
        src = self.ann_file
        if not src:
            raise InvalidInputError('RadiographDataset: give ann_file (an image list file in '
                                    "ChestX-ray14's `name label...` format, or a folder).")
        if osp.isdir(src):
            items = []
            for root, _, files in os.walk(src):
                for f in files:
                    if osp.splitext(f)[1].lower() in RADIOGRAPH_EXTENSIONS:
                        items.append(dict(img_path=osp.join(root, f)))
            items.sort(key=lambda d: d['img_path'])
            if not items:
                raise InvalidInputError(f'{src}: no radiographs ({", ".join(RADIOGRAPH_EXTENSIONS)})'
                                        ' found in this folder; check the path.')
        elif osp.isfile(src):
            items = self._parse_list(src)
        else:
            raise InvalidInputError(f'{src}: image list file or folder not found; check '
                                    'ann_file / data_root.')
        if self.label_fraction < 1.0:
            rng = np.random.default_rng(self.fraction_seed)
            n = max(1, int(round(self.label_fraction * len(items))))
            keep = np.sort(rng.permutation(len(items))[:n])
            items = [items[i] for i in keep]
        return items

    def _parse_list(self, path: str) -> List[dict]:
        classes = tuple(self.metainfo.get('classes') or ())
        index = {c.lower(): i for i, c in enumerate(classes)}
        root = self._img_root()
        items, n_labels = [], None
        with open(path, encoding='utf-8') as fh:
            for lineno, line in enumerate(fh, 1):
                line = line.split('#', 1)[0].strip()
                if not line:
                    continue
                parts = line.split()
                info = dict(img_path=osp.join(root, parts[0]))
                tokens = parts[1:]
                if tokens:
                    try:
                        label = np.asarray([float(t) for t in tokens], dtype=np.float32)
                    except ValueError:
                        label = np.zeros(len(classes), dtype=np.float32)
                        for name in ' '.join(tokens).split('|'):
                            name = name.strip()
                            if name.lower() in ('no finding', 'no_finding', ''):
                                continue
                            if name.lower() not in index:
                                raise InvalidInputError(
                                    f'{path}:{lineno}: label {name!r} is not one of the '
                                    f'classes {list(classes)}; pass `classes=` or fix the line.')
                            label[index[name.lower()]] = 1.0
                    if n_labels is None:
                        n_labels = label.size
                    elif label.size != n_labels:
                        raise InvalidInputError(
                            f'{path}:{lineno}: {label.size} labels, earlier lines have '
                            f'{n_labels}; every line needs the same number of labels.')
                    info['gt_label'] = label
                items.append(info)
        if not items:
            raise InvalidInputError(f'{path}: the image list is empty.')
        return items

    # --------------------------------------------------------------------------- loading
    def load_image(self, idx: int):
        """Load item ``idx`` as ``(img float32 (H, W) in [0, 1], ori_shape, spacing)``."""
        if idx in self._cache:
            return self._cache[idx]
        from ..fileio import read_xray
        path = self.get_data_info(idx)['img_path']
        image = read_xray(path)
        arr = to_unit_range(image.array)
        ori_shape = arr.shape
        arr = np.ascontiguousarray(resize_longer_side(arr, self.load_size), dtype=np.float32)
        spacing = tuple(float(s) * o / n for s, o, n in
                        zip(image.spacing, ori_shape[::-1], arr.shape[::-1]))
        out = (arr, ori_shape, spacing)
        if self.cache_images:
            self._cache[idx] = out
        return out

    def prepare_data(self, idx: int):
        """Load the image of item ``idx`` and run the pipeline on it."""
        info = self.get_data_info(idx)
        img, ori_shape, spacing = self.load_image(idx)
        info.update(img=img.copy() if self.cache_images else img, ori_shape=ori_shape,
                    img_shape=img.shape, spacing=spacing)
        return self.pipeline(info)
