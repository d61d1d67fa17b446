"""A dataset of synthetic torso subjects generated on the fly (no files)."""
from __future__ import annotations

import copy
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
from mmengine.dataset import BaseDataset

from ..registry import DATASETS
from ..utils.exceptions import InvalidInputError
from .synthetic_subject_cache import SyntheticSubjectCache, cache_key

_MODALITIES = ('CT', 'MR')


@DATASETS.register_module()
class SyntheticSubjectDataset(BaseDataset):
    """Synthetic chest-abdomen-pelvis subjects, drawn when an item is requested.

    Item ``i`` is the subject of seed ``base_seed + i`` (so the dataset is deterministic and
    needs no disk), rendered in a modality chosen per sample from ``modalities`` (by a
    random draw that is itself a function of the seed). Only a list of seeds is built at
    initialisation; generating one 2 mm subject takes about a second, so set ``cache_dir``
    (each subject generated once) or use dataloader workers for training.

    Each item (before ``pipeline``) is a results dict::

        {'image': MedicalImage (CT in HU or MR), 'label': MedicalImage (int16 label map on
         the same grid), 'modality': 'CT' | 'MR', 'landmarks': PointSet (world LPS mm),
         'subject_id': 'synthetic_000042', 'label_names': {id: name}, 'lesions':
         [(centre_xyz, radius_mm), ...], 'seed': int, 'img_shape': (z, y, x),
         'sample_idx': i}

    With ``aligned_pair=True`` and two modalities it also holds ``'pair_image'`` and
    ``'pair_modality'``: the same subject in the other modality on the same grid.

    Args:
        num_subjects: dataset length.
        base_seed: seed of item 0.
        modalities: ``('CT',)``, ``('MR',)`` or ``('CT', 'MR')``.
        modality_probs: probabilities of ``modalities`` (default uniform).
        mr_presets: MR presets drawn uniformly per MR sample (``'T1'``, ``'T2'``,
            ``'random'``).
        spacing: voxel size (mm), one value or ``(x, y, z)``.
        subject_kwargs: further arguments of
            :func:`~mmanat.datasets.synthetic.generate_subject` (``fov_mm``, ``shape``,
            ``z_range``, ``lesions``, ``deform``).
        ct_kwargs, mr_kwargs: arguments of the renderers (e.g. ``contrast``, ``noise``).
        aligned_pair: also return the subject in the other modality.
        pipeline: transforms applied to the results dict.
        lazy_init: defer building the (tiny) seed list until first use.
        cache_dir: optional directory of a disk cache of the rendered items (see
            :mod:`mmanat.datasets.synthetic_subject_cache`): each subject is generated once,
            then served from memory-mapped files (about 24 MB per 2 mm CT subject). Keys
            cover the seed, every option and the generator's source, so a stale entry is
            never used. ``None``: generate every item (about a second each).
    """

    METAINFO = dict(dataset_type='synthetic_torso')

    def __init__(self, num_subjects: int = 100, base_seed: int = 0,
                 modalities: Sequence[str] = ('CT', ),
                 modality_probs: Optional[Sequence[float]] = None,
                 mr_presets: Sequence[str] = ('T1', 'T2'),
                 spacing: Union[float, Sequence[float]] = 2.0,
                 subject_kwargs: Optional[Dict] = None, ct_kwargs: Optional[Dict] = None,
                 mr_kwargs: Optional[Dict] = None, aligned_pair: bool = False,
                 pipeline: Sequence = (), lazy_init: bool = False,
                 cache_dir: Optional[str] = None, **kwargs):
        if int(num_subjects) < 1:
            raise InvalidInputError(f'num_subjects must be >= 1, got {num_subjects}.')
        mods = tuple(str(m).upper() for m in modalities)
        if not mods or any(m not in _MODALITIES for m in mods):
            raise InvalidInputError(f'modalities {modalities!r}: use a non-empty subset of '
                                    f'{_MODALITIES}.')
        from .synthetic.renderers import MR_PRESETS
        bad = [p for p in mr_presets if p not in MR_PRESETS]
        if bad or not mr_presets:
            raise InvalidInputError(f'mr_presets {mr_presets!r}: use values from {MR_PRESETS}.')
        if modality_probs is not None:
            probs = np.asarray(modality_probs, dtype=float)
            if probs.shape != (len(mods), ) or np.any(probs < 0) or probs.sum() <= 0:
                raise InvalidInputError(f'modality_probs {modality_probs!r} must give one '
                                        f'non-negative weight per modality {mods}.')
            self.modality_probs = probs / probs.sum()
        else:
            self.modality_probs = np.full(len(mods), 1.0 / len(mods))
        self.num_subjects = int(num_subjects)
        self.base_seed = int(base_seed)
        self.modalities = mods
        self.mr_presets = tuple(mr_presets)
        self.spacing = spacing
        self.subject_kwargs = dict(subject_kwargs or {})
        self.ct_kwargs = dict(ct_kwargs or {})
        self.mr_kwargs = dict(mr_kwargs or {})
        self.aligned_pair = bool(aligned_pair)
        self.cache_dir = cache_dir
        self._cache = SyntheticSubjectCache(cache_dir) if cache_dir else None
        kwargs.setdefault('serialize_data', False)  # the data list is tiny
        super().__init__(ann_file='', data_root='', pipeline=list(pipeline),
                         lazy_init=lazy_init, **kwargs)

    def load_data_list(self) -> List[dict]:
        """One small dict per subject (its seed); nothing is generated here."""
        return [dict(subject_index=i, seed=self.base_seed + i)
                for i in range(self.num_subjects)]

    def _choose(self, seed: int):
        rng = np.random.default_rng([seed, 0x5EED])
        modality = self.modalities[int(rng.choice(len(self.modalities),
                                                  p=self.modality_probs))]
        preset = self.mr_presets[int(rng.integers(len(self.mr_presets)))]
        return modality, preset

    def _render(self, subject, modality: str, preset: str):
        from .synthetic.renderers import render_ct, render_mr
        if modality == 'CT':
            return render_ct(subject, **self.ct_kwargs)
        kwargs = dict(self.mr_kwargs)
        kwargs.setdefault('preset', preset)
        return render_mr(subject, **kwargs)

    def _cache_params(self, seed: int, modality: str, preset: str) -> dict:
        """Everything a generated item depends on (hashed into its cache key)."""
        spacing = np.asarray(self.spacing, dtype=float).tolist()
        return dict(seed=seed, spacing=spacing, subject_kwargs=self.subject_kwargs,
                    ct_kwargs=self.ct_kwargs, mr_kwargs=self.mr_kwargs, modality=modality,
                    preset=preset, modalities=list(self.modalities),
                    aligned_pair=self.aligned_pair and len(self.modalities) > 1)

    def _generate(self, seed: int, modality: str, preset: str) -> dict:
        from .synthetic.subject import generate_subject
        subject = generate_subject(seed, spacing=self.spacing, **self.subject_kwargs)
        image = self._render(subject, modality, preset)
        results = dict(image=image, label=subject.labels, modality=modality,
                       landmarks=subject.landmarks, subject_id=f'synthetic_{seed:06d}',
                       label_names=copy.copy(subject.label_names), lesions=subject.lesions,
                       img_shape=tuple(image.shape))
        if self.aligned_pair and len(self.modalities) > 1:
            other = [m for m in self.modalities if m != modality][0]
            results['pair_image'] = self._render(subject, other, preset)
            results['pair_modality'] = other
        return results

    def build_sample(self, info: dict) -> dict:
        """Generate and render the subject described by ``info`` (a data-list entry), or
        load it from the cache (``cache_dir``): the cached item is bit-identical, its image
        arrays memory-mapped copy-on-write."""
        seed = int(info['seed'])
        modality, preset = self._choose(seed)
        generated = None
        if self._cache is not None:
            key = cache_key(self._cache_params(seed, modality, preset))
            generated = self._cache.load(key)
            if generated is None:
                generated = self._generate(seed, modality, preset)
                self._cache.store(key, generated)
        else:
            generated = self._generate(seed, modality, preset)
        results = dict(info)
        results.update(generated)
        return results

    def prepare_data(self, idx: int):
        """Generate item ``idx`` and run the pipeline on it."""
        return self.pipeline(self.build_sample(self.get_data_info(idx)))
