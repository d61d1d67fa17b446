"""Synthetic chest radiographs rendered from the synthetic torso generator, with landmarks."""
from __future__ import annotations

import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from mmengine.dataset import BaseDataset

from ..registry import DATASETS
from ..utils.exceptions import InvalidInputError

#: image-level labels of the synthetic radiographs (a stand-in classification task)
SYNTHETIC_XRAY_CLASSES = ('lesion', 'wide_body', 'large_belly')


def render_synthetic_xray(seed: int, spacing: float = 4.0, img_size: Optional[int] = 96,
                          z_range: Tuple[float, float] = (300.0, 700.0)) -> dict:
    """Render the chest radiograph of synthetic subject ``seed``.

    The subject (see :func:`~mmanat.datasets.synthetic.generate_subject`) is drawn with the
    given voxel ``spacing`` (mm) over ``z_range`` (mm above the pelvic floor: the thorax and
    upper abdomen), rendered as CT without the table and projected (parallel beam, PA-like).
    The radiograph is zero-padded to a square (air) and resized to ``img_size`` pixels.

    Returns:
        dict with ``img`` (float32 ``(S, S)`` in [0, 1]), ``landmarks`` (float32 ``(L, 2)``
        pixel ``(column, row)`` of the projected landmarks on ``img``), ``landmark_names``,
        ``landmark_valid`` (bool ``(L,)``: inside the field of view and the image),
        ``gt_label`` (float32 multi-hot over :data:`SYNTHETIC_XRAY_CLASSES`), ``spacing``
        (mm per pixel ``(sx, sy)`` of ``img``), ``seed``.
    """
    import cv2

    from .synthetic import STRUCTURE_BY_NAME, generate_subject, render_ct, render_xray
    subj = generate_subject(int(seed), spacing=float(spacing), z_range=tuple(z_range),
                            threads=1)
    ct = render_ct(subj)
    table = subj.labels.array == STRUCTURE_BY_NAME['table'].label
    xr, pts = render_xray(ct, subj.landmarks, exclude=table)
    img = xr.array.astype(np.float32)
    ij = xr.world_to_index(pts.xyz)  # continuous (column, row)
    h, w = img.shape
    side = max(h, w)
    top, left = (side - h) // 2, (side - w) // 2
    sq = np.zeros((side, side), np.float32)
    sq[top:top + h, left:left + w] = img
    ij = ij + np.array([left, top], dtype=np.float64)
    out_size = side if img_size is None else int(img_size)
    scale = out_size / side
    if out_size != side:
        sq = cv2.resize(sq, (out_size, out_size),
                        interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    # pixel centres: continuous index c maps to (c + 0.5) * scale - 0.5
    ij = (ij + 0.5) * scale - 0.5
    in_fov = np.asarray(subj.landmarks.extra.get('in_fov', [True] * len(ij)), dtype=bool)
    inside = np.all((ij >= 0) & (ij <= out_size - 1), axis=1)
    # labels: lesion whose centre lies in the field of view; body shape
    z_lo, z_hi = subj.meta['z_range_world']
    lesion = any(z_lo <= float(c[2]) <= z_hi for c, _ in subj.lesions)
    meta = subj.meta
    label = np.array([lesion, meta.get('width_scale', 1.0) > 1.0, meta.get('belly', 1.0) > 1.15],
                     dtype=np.float32)
    sx, sy = (float(s) / scale for s in xr.spacing)
    return dict(img=np.clip(sq, 0, 1), landmarks=ij.astype(np.float32),
                landmark_names=list(pts.names), landmark_valid=in_fov & inside,
                gt_label=label, spacing=(sx, sy), seed=int(seed))


@DATASETS.register_module()
class SyntheticRadiographDataset(BaseDataset):
    """Synthetic chest X-rays with projected landmarks, rendered on the fly (no files).

    Item ``i`` is the radiograph of synthetic subject ``base_seed + i`` (see
    :func:`render_synthetic_xray`; about 0.5-1 s per item at 4 mm on one core). Rendered items
    are kept in memory (``cache_images``, per process: use ``persistent_workers=True`` with
    workers) and optionally in ``cache_dir`` as ``.npz`` files, so repeated runs start at once.

    Each item (before ``pipeline``)::

        {'img': float32 (S, S) in [0, 1], 'img_path': 'synthetic_xray_000042',
         'landmarks': float32 (L, 2) pixel (column, row), 'landmark_names': [...],
         'landmark_valid': bool (L,), 'gt_label': float32 (3,), 'spacing': (sx, sy) mm,
         'ori_shape', 'img_shape', 'seed', 'sample_idx'}

    Args:
        num_samples: dataset length.
        base_seed: seed of item 0.
        spacing: voxel size (mm) of the synthetic CT that is projected (also the X-ray's).
        img_size: side of the square radiograph in pixels.
        z_range: mm above the pelvic floor covered by the radiograph.
        cache_images: keep rendered items in memory.
        cache_dir: folder for rendered items (created; keyed by seed and options).
        label_fraction, fraction_seed: keep a seeded subset of the items.
        pipeline, test_mode, lazy_init, ...: see :class:`mmengine.dataset.BaseDataset`.
    """

    METAINFO = dict(classes=SYNTHETIC_XRAY_CLASSES, dataset_type='synthetic_chest_xray')

    def __init__(self, num_samples: int = 64, base_seed: int = 0, spacing: float = 4.0,
                 img_size: int = 96, z_range: Sequence[float] = (300.0, 700.0),
                 cache_images: bool = True, cache_dir: Optional[str] = None,
                 label_fraction: float = 1.0, fraction_seed: int = 0, **kwargs):
        if int(num_samples) < 1:
            raise InvalidInputError(f'num_samples must be >= 1, got {num_samples}.')
        if not 0.0 < float(label_fraction) <= 1.0:
            raise InvalidInputError(f'label_fraction must be in (0, 1], got {label_fraction}.')
        self.num_samples = int(num_samples)
        self.base_seed = int(base_seed)
        self.spacing = float(spacing)
        self.img_size = int(img_size)
        self.z_range = tuple(float(z) for z in z_range)
        self.cache_images = bool(cache_images)
        self.cache_dir = cache_dir
        self.label_fraction = float(label_fraction)
        self.fraction_seed = int(fraction_seed)
        self._cache: Dict[int, dict] = {}
        super().__init__(**kwargs)

    def load_data_list(self) -> List[dict]:
        """One entry per subject seed (a ``label_fraction`` subset if asked)."""
        seeds = self.base_seed + np.arange(self.num_samples)
        if self.label_fraction < 1.0:
            rng = np.random.default_rng(self.fraction_seed)
            n = max(1, int(round(self.label_fraction * len(seeds))))
            seeds = np.sort(rng.permutation(seeds)[:n])
        return [dict(seed=int(s), img_path=f'synthetic_xray_{int(s):06d}') for s in seeds]

    def _cache_file(self, seed: int) -> str:
        z0, z1 = self.z_range
        return osp.join(self.cache_dir, f'xray_s{seed}_sp{self.spacing:g}_px{self.img_size}_'
                        f'z{z0:g}-{z1:g}.npz')

    def render(self, seed: int) -> dict:
        """Rendered item of subject ``seed`` (from the caches when possible)."""
        if seed in self._cache:
            return self._cache[seed]
        item = None
        if self.cache_dir:
            path = self._cache_file(seed)
            if osp.isfile(path):
                with np.load(path, allow_pickle=False) as z:
                    item = dict(img=z['img'], landmarks=z['landmarks'],
                                landmark_names=[str(n) for n in z['landmark_names']],
                                landmark_valid=z['landmark_valid'], gt_label=z['gt_label'],
                                spacing=tuple(float(v) for v in z['spacing']), seed=seed)
        if item is None:
            item = render_synthetic_xray(seed, self.spacing, self.img_size, self.z_range)
            if self.cache_dir:
                from ..fileio import atomic_path
                os.makedirs(self.cache_dir, exist_ok=True)
                with atomic_path(self._cache_file(seed)) as tmp:
                    with open(tmp, 'wb') as fh:
                        np.savez(fh, img=item['img'], landmarks=item['landmarks'],
                                 landmark_names=np.array(item['landmark_names']),
                                 landmark_valid=item['landmark_valid'],
                                 gt_label=item['gt_label'], spacing=np.array(item['spacing']))
        if self.cache_images:
            self._cache[seed] = item
        return item

    def prepare_data(self, idx: int):
        """Render (or fetch) item ``idx`` and run the pipeline on it."""
        info = self.get_data_info(idx)
        item = self.render(info['seed'])
        info.update({k: v for k, v in item.items() if k != 'img'})
        info.update(img=item['img'].copy(), ori_shape=item['img'].shape,
                    img_shape=item['img'].shape, landmarks=item['landmarks'].copy())
        return self.pipeline(info)
