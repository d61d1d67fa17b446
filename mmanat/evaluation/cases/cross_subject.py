"""Benchmark 2: the named landmarks of one synthetic subject found in another."""
from __future__ import annotations

from typing import List, Sequence, Tuple

from ...datasets.synthetic_landmark_pair_dataset import cross_subject_pair
from .landmark_case import LandmarkCase

__all__ = ['cross_subject_cases']


def cross_subject_cases(modality_pairs: Sequence[Tuple[str, str]] = (('CT', 'CT'),
                                                                     ('MR', 'MR'),
                                                                     ('CT', 'MR')),
                        n_pairs: int = 2, spacing: float = 2.0, seed: int = 0,
                        margin_mm: float = 4.0,
                        z_range=(250.0, 570.0)) -> List[LandmarkCase]:
    """Benchmark 2: the named landmarks of one synthetic subject found in another.

    For every modality pair ``(template modality, target modality)`` and ``k < n_pairs``, the
    template is subject ``seed + 2k`` and the target subject ``seed + 2k + 1`` (the same
    subjects for every modality pair, so only the modality changes between the groups).
    Both are imaged over the same anatomical range ``z_range`` (mm above the pelvic floor of
    the phantom; default 250-570 mm, chest and upper abdomen, like one scan protocol; see
    :func:`~mmanat.datasets.synthetic.generate_subject`). Points are the landmarks that lie
    inside both images, ``margin_mm`` from the borders. Each pair is made by
    :func:`~mmanat.datasets.synthetic_landmark_pair_dataset.cross_subject_pair`, which also
    feeds the ``SyntheticLandmarkPairDataset`` of ``tools/test.py``.

    Args:
        modality_pairs: (template, target) modalities, ``'CT'`` / ``'MR'``.
        n_pairs: pairs per modality pair.
        spacing: voxel size (mm) of the generated subjects.
        seed: base seed.
        margin_mm: minimum distance (mm) of a landmark from the image borders.
        z_range: imaged range (mm above the pelvic floor).

    Returns:
        ``len(modality_pairs) * n_pairs`` cases named ``'CT->MR/0'``, ...
    """
    from ...datasets.synthetic import generate_subject
    cache = {}

    def subject(s):
        if s not in cache:
            cache[s] = generate_subject(s, spacing=spacing, z_range=z_range)
        return cache[s]

    cases = []
    for mod_a, mod_b in modality_pairs:
        for k in range(n_pairs):
            pair = cross_subject_pair(seed, k, (mod_a, mod_b), margin_mm=margin_mm,
                                      subject_fn=subject)
            cases.append(LandmarkCase(
                f'{mod_a}->{mod_b}/{k}', pair['template'], pair['target'],
                pair['template_points'], pair['target_points'], names=pair['names'],
                meta=dict(kind='cross_subject', template_seed=pair['template_seed'],
                          target_seed=pair['target_seed'], modalities=[mod_a, mod_b])))
    return cases
