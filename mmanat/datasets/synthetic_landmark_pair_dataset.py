"""Landmark pairs of synthetic subjects, generated from seeds (no files needed).

:func:`cross_subject_pair` is the generator of benchmark 2 of ``tools/benchmark.py``
(:func:`mmanat.evaluation.cross_subject_cases` calls it): the named landmarks of one synthetic
subject, to be found in another subject imaged over the same anatomical range.
:class:`SyntheticLandmarkPairDataset` serves the same pairs to mmengine's test loop, so a
checkpoint can be evaluated with ``tools/test.py`` from a fresh clone.
"""
from __future__ import annotations

from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
from mmengine.dataset import BaseDataset

from ..registry import DATASETS
from ..utils.exceptions import InvalidInputError

__all__ = ['render_subject', 'cross_subject_pair', 'SyntheticLandmarkPairDataset']

_MODALITIES = ('CT', 'MR')


def render_subject(subject, modality: str, rng: np.random.Generator, **kwargs):
    """Render a synthetic subject as ``'CT'`` (:func:`render_ct`) or ``'MR'``
    (:func:`render_mr`).

    Args:
        subject: a :class:`~mmanat.datasets.synthetic.SyntheticSubject`.
        modality: ``'CT'`` or ``'MR'``.
        rng: random generator of the rendering (noise, tissue values).
        **kwargs: passed to the renderer (e.g. ``preset='T2'`` for MR, ``contrast=True``).

    Returns:
        the rendered :class:`~mmanat.structures.MedicalImage`.
    """
    from .synthetic import render_ct, render_mr
    renderers = {'CT': render_ct, 'MR': render_mr}
    if modality not in renderers:
        raise InvalidInputError(f'modality {modality!r}: use one of {_MODALITIES}.')
    return renderers[modality](subject, rng, **kwargs)


def cross_subject_pair(seed: int, k: int, modalities: Tuple[str, str] = ('CT', 'CT'),
                       spacing: float = 2.0, margin_mm: float = 4.0,
                       z_range: Sequence[float] = (250.0, 570.0),
                       subject_fn: Optional[Callable[[int], object]] = None) -> Dict:
    """Pair ``k`` of the cross-subject landmark benchmark.

    The template is subject ``seed + 2k`` rendered in ``modalities[0]``, the target subject
    ``seed + 2k + 1`` rendered in ``modalities[1]``, both over ``z_range`` (mm above the pelvic
    floor of the phantom; see :func:`~mmanat.datasets.synthetic.generate_subject`). The points
    are the landmarks named in both subjects that lie inside both images, at least
    ``margin_mm`` from their borders.

    Args:
        seed: base seed of the benchmark.
        k: index of the pair.
        modalities: (template modality, target modality), each ``'CT'`` or ``'MR'``.
        spacing: voxel size (mm) of the generated subjects.
        margin_mm: minimum distance of a kept landmark from the image borders.
        z_range: imaged range (mm above the pelvic floor).
        subject_fn: ``seed -> SyntheticSubject`` (e.g. a cache); default: generate it.

    Returns:
        dict with ``template`` and ``target`` (MedicalImage), ``template_points`` and
        ``target_points`` (``(N, 3)`` world LPS mm), ``names`` (N landmark names),
        ``template_seed``, ``target_seed`` and ``modalities``.
    """
    from .synthetic import generate_subject
    mod_a, mod_b = (str(m).upper() for m in modalities)
    if subject_fn is None:
        def subject_fn(s):
            return generate_subject(s, spacing=spacing, z_range=z_range)
    sa, sb = seed + 2 * k, seed + 2 * k + 1
    a, b = subject_fn(sa), subject_fn(sb)
    img_a = render_subject(a, mod_a, np.random.default_rng([seed, sa, 1]))
    img_b = render_subject(b, mod_b, np.random.default_rng([seed, sb, 2]))
    names = [nm for nm in a.landmarks.names if nm in set(b.landmarks.names)]
    pa = np.array([a.landmarks[nm] for nm in names]).reshape(-1, 3)
    pb = np.array([b.landmarks[nm] for nm in names]).reshape(-1, 3)
    ok = (img_a.contains_world(pa, margin=-margin_mm / img_a.spacing.min())
          & img_b.contains_world(pb, margin=-margin_mm / img_b.spacing.min()))
    return dict(template=img_a, target=img_b, template_points=pa[ok], target_points=pb[ok],
                names=[nm for nm, o in zip(names, ok) if o], template_seed=sa,
                target_seed=sb, modalities=[mod_a, mod_b])


@DATASETS.register_module()
class SyntheticLandmarkPairDataset(BaseDataset):
    """Landmark pairs across synthetic subjects, for mmengine's test loop.

    Item ``i`` is pair ``k = i % num_pairs`` of modality pair
    ``modality_pairs[i // num_pairs]`` of :func:`cross_subject_pair` - the same pairs, in the
    same order, as :func:`mmanat.evaluation.cross_subject_cases` with the same arguments.
    Nothing is generated at initialisation; one pair takes a few seconds at 2 mm.

    Each item (before ``pipeline``) is a dict::

        {'template': MedicalImage, 'target': MedicalImage,
         'template_points': (N, 3) query points, world LPS mm, in the template,
         'gt_points': (N, 3) their true positions, world LPS mm, in the target,
         'names': N landmark names, 'pair_name': 'CT->CT/0', 'sample_idx': i,
         'template_seed': int, 'target_seed': int, 'modalities': [str, str]}

    Args:
        modality_pairs: (template modality, target modality) pairs, ``'CT'`` / ``'MR'``.
        num_pairs: pairs per modality pair.
        seed: base seed (template subject ``seed + 2k``, target ``seed + 2k + 1``).
        spacing: voxel size (mm) of the generated subjects.
        margin_mm: minimum distance of a landmark from the image borders.
        z_range: imaged range (mm above the pelvic floor of the phantom).
        pipeline: transforms applied to each item.
    """

    METAINFO = dict(dataset_type='synthetic_landmark_pairs')

    def __init__(self, modality_pairs: Sequence[Sequence[str]] = (('CT', 'CT'), ),
                 num_pairs: int = 2, seed: int = 0, spacing: float = 2.0,
                 margin_mm: float = 4.0, z_range: Sequence[float] = (250.0, 570.0),
                 pipeline: Sequence = (), **kwargs):
        pairs = []
        for pair in modality_pairs:
            mods = tuple(str(m).upper() for m in pair)
            if len(mods) != 2 or any(m not in _MODALITIES for m in mods):
                raise InvalidInputError(
                    f'modality_pairs entry {pair!r}: give (template, target) modalities, each '
                    f'one of {_MODALITIES}, e.g. modality_pairs=[("CT", "MR")].')
            pairs.append(mods)
        if not pairs:
            raise InvalidInputError('modality_pairs is empty; give at least one, e.g. '
                                    '[("CT", "CT")].')
        if int(num_pairs) < 1:
            raise InvalidInputError(f'num_pairs must be >= 1, got {num_pairs}.')
        self.modality_pairs = pairs
        self.num_pairs = int(num_pairs)
        self.seed = int(seed)
        self.spacing = float(spacing)
        self.margin_mm = float(margin_mm)
        self.z_range = tuple(float(v) for v in z_range)
        kwargs.setdefault('serialize_data', False)  # the data list is tiny
        super().__init__(ann_file='', data_root='', pipeline=list(pipeline), **kwargs)

    def load_data_list(self) -> List[dict]:
        """One small dict per pair (modalities and pair index); nothing is generated here."""
        return [dict(modalities=list(mods), k=k, pair_name=f'{mods[0]}->{mods[1]}/{k}')
                for mods in self.modality_pairs for k in range(self.num_pairs)]

    def prepare_data(self, idx: int) -> dict:
        """Generate pair ``idx`` and run the pipeline on it."""
        info = self.get_data_info(idx)
        pair = cross_subject_pair(self.seed, int(info['k']), tuple(info['modalities']),
                                  spacing=self.spacing, margin_mm=self.margin_mm,
                                  z_range=self.z_range)
        results = dict(info)
        results.update(template=pair['template'], target=pair['target'],
                       template_points=pair['template_points'],
                       gt_points=pair['target_points'], names=pair['names'],
                       template_seed=pair['template_seed'],
                       target_seed=pair['target_seed'])
        return self.pipeline(results)
