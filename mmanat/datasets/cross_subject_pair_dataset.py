"""Inter-subject pairs with organ label maps for the semantic branch of UAE-S (UAE: Bai et
al., 2023)."""
from __future__ import annotations

import copy
from typing import List, Optional, Sequence, Union

import numpy as np
from mmengine.dataset import BaseDataset, Compose
from mmengine.registry import DefaultScope

from ..registry import DATASETS
from ..structures.image import MedicalImage
from ..utils.exceptions import InvalidInputError

__all__ = ['CrossSubjectPairDataset', 'lps_aligned_direction', 'random_crop_geometry']


def lps_aligned_direction(direction: np.ndarray) -> np.ndarray:
    """The image's own axes, permuted and flipped to point along L, P, S as closely as the
    scan allows (what :func:`mmanat.structures.resample.reorient` gives, without
    resampling): column ``r`` is the image axis most parallel to world axis ``r``, signed
    towards it."""
    direction = np.asarray(direction, dtype=np.float64)
    from scipy.optimize import linear_sum_assignment
    rows, cols = linear_sum_assignment(-np.abs(direction))  # world axis r <- image axis c
    out = np.empty((3, 3))
    for r, c in zip(rows, cols):
        out[:, r] = direction[:, c] * (1.0 if direction[r, c] >= 0 else -1.0)
    return out


def random_crop_geometry(image: MedicalImage, size_zyx: Sequence[int], spacing: float,
                         rng: Optional[np.random.Generator] = None,
                         align_lps: bool = True) -> dict:
    """A random crop grid of ``size_zyx`` voxels at ``spacing`` mm over ``image``.

    The grid axes are the image's axes (``align_lps``: reordered/flipped to L, P, S by
    :func:`lps_aligned_direction`). Along each axis, a crop shorter than the image's extent
    lies inside it at a uniformly random position; a longer one covers the whole extent at a
    random offset (its outside voxels are invalid padding).

    ``rng``: a numpy Generator (default: numpy's global RNG).

    Returns a grid geometry dict (``origin``, ``spacing``, ``direction``, ``size`` in ITK
    order) for :func:`mmanat.datasets.transforms.two_view_crop.sample_on_grid`.
    """
    direction = (lps_aligned_direction(image.direction) if align_lps else
                 np.asarray(image.direction, dtype=np.float64))
    size_xyz = np.asarray(size_zyx[::-1], dtype=np.int64)
    # image voxel extent [-0.5, n - 0.5] in the crop frame (coordinates along its axes)
    n = image.size.astype(np.float64)
    corners = np.stack(np.meshgrid(*[[-0.5, v - 0.5] for v in n], indexing='ij'), -1)
    corners = image.index_to_world(corners.reshape(-1, 3)) @ direction  # (8, 3)
    lo, hi = corners.min(0), corners.max(0)
    length = size_xyz * float(spacing)
    a, b = np.minimum(lo + length / 2, hi - length / 2), np.maximum(lo + length / 2,
                                                                  hi - length / 2)
    u = np.random.random_sample(3) if rng is None else rng.random(3)
    centre = a + (b - a) * u
    origin_frame = centre - (size_xyz - 1) / 2.0 * float(spacing)
    return dict(origin=direction @ origin_frame, spacing=np.full(3, float(spacing)),
                direction=direction, size=size_xyz)


def _air_value(image: MedicalImage) -> float:
    """Intensity of voxels outside the image: the volume minimum (recorded by the cache, or
    from a strided subsample)."""
    if image.meta.get('min') is not None:
        return float(image.meta['min'])
    arr = image.array
    steps = [max(1, int(round(n / 64))) for n in arr.shape]
    return float(np.min(arr[tuple(slice(None, None, s) for s in steps)]))


@DATASETS.register_module()
class CrossSubjectPairDataset(BaseDataset):
    """Pairs of two DIFFERENT subjects with organ label maps (UAE-S semantic branch).

    Item ``i`` pairs subject ``i % len(source)`` with another subject of ``source`` drawn at
    random (numpy's global RNG, seeded per dataloader worker by mmengine). Each subject gets
    an independent random crop of ``crop_size`` (z, y, x) voxels at ``spacing`` mm (UAE:
    (120, 180, 180) at 2 mm, i.e. (180, 180, 120) in (y, x, z)), sampled straight from the
    original volume in one step - linear for the image, nearest for the label map - on a grid
    along the image's own axes reordered to L, P, S. This equals "resample to 2 mm, then
    crop" with one interpolation instead of two. ``view_pipeline`` (e.g. intensity
    normalisation and augmentation) runs per subject, then ``pipeline`` (default
    ``PackSAMInputs``) on the stacked pair. The packed sample follows the SAM contract::

        {'inputs': (2, 1, D, H, W) float32,
         'data_samples': dict(coords=(2, 3, D, H, W) world mm, each in its own subject's
                              frame, valid=(2, D, H, W) bool, labels=(2, D, H, W) int64,
                              meta=dict(pair_type='inter', subject_id=(a, b), ...))}

    ``meta['pair_type'] == 'inter'`` is what :class:`UAESDataPreprocessor` uses to batch
    these pairs apart from intra-volume view pairs.

    Source items must provide ``image`` and ``label`` (:class:`MedicalImage` on the same
    grid; label values are the structure ids, the same id meaning the same organ in every
    subject, 0 = background). A source item with ``img_path`` but no ``image`` (e.g. a
    :class:`VolumeListDataset` with a ``label`` column and no pipeline) is loaded with
    ``LoadVolume(with_label=True)``.

    Args:
        source: dataset (config or instance) of single subjects, e.g.
            ``dict(type='SyntheticSubjectDataset', ...)`` or ``dict(type='VolumeListDataset',
            data_root=..., ann_file='list.csv')`` (CSV columns ``image,label``).
        num_pairs: dataset length (default ``len(source)``).
        crop_size: (z, y, x) voxels of each crop.
        spacing: crop spacing in mm.
        align_lps: crop grid axes reordered to L, P, S (else the image's own axes).
        view_pipeline: transforms run on each subject's crop (keys ``view_imgs`` (1, D, H, W),
            ``view_coords``, ``view_valid``, ``view_labels``, ``view_geometries``,
            ``view_pad_value``, ``image``, ``modality``), e.g. ``NormalizeViewIntensity`` and
            ``RandomIntensityAugment``.
        pipeline: transforms run on the merged pair (default ``[PackSAMInputs]``).
        max_refetch: retries with another pair when a source item cannot be used.
        **kwargs: further :class:`mmengine.dataset.BaseDataset` arguments (``lazy_init``...).
    """

    METAINFO = dict(dataset_type='cross_subject_pairs')

    def __init__(self, source: Union[dict, BaseDataset], num_pairs: Optional[int] = None,
                 crop_size: Sequence[int] = (120, 180, 180), spacing: float = 2.0,
                 align_lps: bool = True, view_pipeline: Sequence = (dict(
                     type='NormalizeViewIntensity'), ),
                 pipeline: Sequence = (dict(type='PackSAMInputs'), ), **kwargs):
        if len(crop_size) != 3 or min(int(v) for v in crop_size) < 1:
            raise InvalidInputError(
                f'CrossSubjectPairDataset: crop_size={crop_size!r} must be 3 positive ints '
                '(z, y, x)')
        if float(spacing) <= 0:
            raise InvalidInputError(f'CrossSubjectPairDataset: spacing={spacing} must be > 0')
        self.crop_size = tuple(int(v) for v in crop_size)
        self.spacing = float(spacing)
        self.align_lps = bool(align_lps)
        scope = None if DefaultScope.get_current_instance() is not None else 'mmanat'
        with DefaultScope.overwrite_default_scope(scope):
            self.source = DATASETS.build(source) if isinstance(source, dict) else source
            if hasattr(self.source, 'full_init'):
                self.source.full_init()
            if len(self.source) < 2:
                raise InvalidInputError(
                    f'CrossSubjectPairDataset: the source dataset has {len(self.source)} '
                    'subject(s); inter-subject pairs need at least 2')
            self.num_pairs = len(self.source) if num_pairs is None else int(num_pairs)
            if self.num_pairs < 1:
                raise InvalidInputError(
                    f'CrossSubjectPairDataset: num_pairs={num_pairs} must be >= 1')
            self.view_pipeline = Compose(list(view_pipeline))
            from .transforms.loading import LoadVolume
            self._loader = LoadVolume(with_label=True)
            super().__init__(ann_file='', data_root='', pipeline=list(pipeline),
                             serialize_data=False, **kwargs)

    def load_data_list(self) -> List[dict]:
        """One tiny entry per pair (its index); subjects are drawn when the item is read."""
        return [dict(pair_index=i) for i in range(self.num_pairs)]

    # ------------------------------------------------------------------ one subject
    def _subject(self, index: int) -> dict:
        results = copy.copy(self.source[index])
        if not isinstance(results.get('image'), MedicalImage):
            if results.get('img_path') is None:
                raise InvalidInputError(
                    f'CrossSubjectPairDataset: source item {index} has neither an "image" nor '
                    f'an "img_path" (keys {sorted(results)})')
            results = self._loader(results)
        image, label = results.get('image'), results.get('label')
        where = results.get('img_path') or results.get('subject_id') or f'item {index}'
        if not isinstance(label, MedicalImage):
            raise InvalidInputError(
                f'CrossSubjectPairDataset: {where} has no label map; UAE-S needs organ label '
                'maps (a "label" column in the list CSV, or synthetic subjects)')
        if image.ndim != 3 or tuple(label.shape) != tuple(image.shape):
            raise InvalidInputError(
                f'CrossSubjectPairDataset: {where}: image {image.shape} and label '
                f'{label.shape} must be 3D volumes on the same grid')
        return results

    def _crop(self, results: dict) -> dict:
        from .transforms.two_view_crop import grid_world_coords, sample_on_grid
        image, label = results['image'], results['label']
        geom = random_crop_geometry(image, self.crop_size, self.spacing,
                                    align_lps=self.align_lps)
        pad = _air_value(image)
        img, valid, lab = sample_on_grid(image, geom, pad, order=1,
                                         extra=[(label.array, 0, 0.0)])
        out = dict(image=image, modality=results.get('modality') or image.modality,
                   subject_id=results.get('subject_id'), img_path=results.get('img_path'),
                   view_imgs=img[None], view_valid=valid[None],
                   view_labels=np.rint(lab).astype(np.int64)[None],
                   view_coords=grid_world_coords(geom)[None], view_geometries=[geom],
                   view_pad_value=pad, two_view_meta={})
        if 'intensity_window' in results:
            out['intensity_window'] = results['intensity_window']
        out = self.view_pipeline(out)
        if out is None:
            raise InvalidInputError('CrossSubjectPairDataset: view_pipeline returned None')
        return out

    # ------------------------------------------------------------------ pair
    def prepare_data(self, idx: int):
        """Draw the partner subject, crop both, run the pipelines, mark the pair 'inter'."""
        n = len(self.source)
        a = int(self.get_data_info(idx)['pair_index']) % n
        b = (a + 1 + int(np.random.randint(n - 1))) % n  # uniform over the others
        views = [self._crop(self._subject(k)) for k in (a, b)]
        merged = dict(
            view_imgs=np.concatenate([v['view_imgs'] for v in views]),
            view_coords=np.concatenate([v['view_coords'] for v in views]),
            view_valid=np.concatenate([v['view_valid'] for v in views]),
            view_labels=np.concatenate([v['view_labels'] for v in views]),
            view_geometries=[v['view_geometries'][0] for v in views],
            subject_id=tuple(v['subject_id'] for v in views),
            modality=tuple(v['modality'] for v in views),
            img_path=tuple(v['img_path'] for v in views),
            source_indices=(a, b),
            two_view_meta=dict(
                pair_type='inter', source_indices=(a, b),
                augment=[(v.get('two_view_meta') or {}).get('augment') for v in views],
                intensity_windows=[v.get('intensity_window') for v in views]))
        packed = self.pipeline(merged)
        if packed is None:
            return None
        ds = packed.get('data_samples') if isinstance(packed, dict) else None
        if isinstance(ds, dict):
            if 'labels' not in ds:
                raise InvalidInputError(
                    'CrossSubjectPairDataset: the packed pair has no labels; end the pipeline '
                    'with PackSAMInputs (it packs view_labels)')
            ds.setdefault('meta', {})['pair_type'] = 'inter'
        return packed
