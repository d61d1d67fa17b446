"""UAE-M benchmark cases: the CT of a synthetic subject and its MR moved by a known
deformation (Bai et al., "UAE: Universal anatomical embedding on multi-modality medical
images", 2023, arXiv:2311.15111: multi-modality registration)."""
from __future__ import annotations

from typing import List, Sequence

import numpy as np

from ...datasets.synthetic_landmark_pair_dataset import render_subject
from .deformation import random_deformation, random_target_grid, warp_image
from .landmark_case import LandmarkCase
from .sampling import sample_body_points

__all__ = ['ct_mr_registration_cases']


def ct_mr_registration_cases(n_cases: int = 2, spacing: float = 4.0, seed: int = 0,
                             n_body_points: int = 30, mr_presets: Sequence[str] = ('T1', 'T2'),
                             z_range=(250.0, 570.0), edge_margin_mm: float = 8.0,
                             max_rotation_deg: float = 8.0, max_translation_mm: float = 15.0,
                             max_displacement_mm: float = 8.0, max_scale: float = 0.0
                             ) -> List[LandmarkCase]:
    """UAE-M cases: the CT of a synthetic subject (template) and the MR of the SAME subject
    moved by a known rigid + smooth deformation (target), as if scanned on another day.

    Subject ``seed + k`` is rendered as CT and as MR (preset ``mr_presets[k % len]``) on one
    grid; the MR is then warped by :func:`random_deformation` (rotation, translation, smooth
    displacement; no scaling by default: same patient) onto a slightly cut field of view.
    Points: the named landmarks plus ``n_body_points`` random body points of the CT, with
    their exact positions in the moved MR; only points at least ``edge_margin_mm`` inside the
    MR are kept. ``meta['deformation']`` is the :class:`RandomDeformation` (MR -> moved MR).
    """
    from ...datasets.synthetic import generate_subject
    cases = []
    for k in range(int(n_cases)):
        s = int(seed) + k
        subj = generate_subject(s, spacing=spacing, z_range=z_range)
        rng = np.random.default_rng([int(seed), s, 3])
        ct = render_subject(subj, 'CT', rng)
        preset = mr_presets[k % len(mr_presets)]
        mr = render_subject(subj, 'MR', rng, preset=preset)
        deformation = random_deformation(mr, rng, max_rotation_deg=max_rotation_deg,
                                         max_scale=max_scale,
                                         max_translation_mm=max_translation_mm,
                                         max_displacement_mm=max_displacement_mm)
        grid = random_target_grid(mr, rng, (0.05, 0.05, 0.1), 0.0)
        moved = warp_image(mr, deformation, grid, default_value=float(mr.array.min()))
        names = list(subj.landmarks.names)
        pts = np.array([subj.landmarks[nm] for nm in names]).reshape(-1, 3)
        body = sample_body_points(ct, n_body_points, rng)
        pts = np.concatenate([pts, body])
        names = names + [f'body{i}' for i in range(len(body))]
        gt = deformation.template_to_target(pts)
        margin = edge_margin_mm / moved.spacing
        idx = moved.world_to_index(gt)
        ok = np.all((idx >= margin) & (idx <= moved.size - 1 - margin), axis=1)
        ok &= ct.contains_world(pts, margin=-edge_margin_mm / ct.spacing.min())
        cases.append(LandmarkCase(
            f'CT->MR/{k}', ct, moved, pts[ok], gt[ok],
            names=[nm for nm, o in zip(names, ok) if o],
            meta=dict(kind='ct_mr_registration', seed=s, mr_preset=preset,
                      deformation=deformation)))
    return cases
