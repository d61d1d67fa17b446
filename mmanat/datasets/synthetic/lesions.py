"""Lesions of the phantom (spheres inside organs) and the landmark-in-parent check."""
from __future__ import annotations

from typing import List, Sequence, Tuple

import numpy as np

from .anatomy import LANDMARK_NAMES, LANDMARK_PARENTS
from .paint_rules import allow_only, label_id
from .shapes import WorldSphere

__all__ = ['LESION_ORGANS', 'sample_lesions', 'ensure_inside_parents']

#: (organ, probability weight, radius range in mm) of a lesion
LESION_ORGANS = (('liver', 0.42, (5.0, 16.0)), ('lung_left', 0.14, (3.0, 11.0)),
                 ('lung_right', 0.16, (3.0, 11.0)), ('kidney_left', 0.07, (5.0, 12.0)),
                 ('kidney_right', 0.07, (5.0, 12.0)), ('spleen', 0.14, (4.0, 11.0)))


def sample_lesions(model, rng: np.random.Generator, count: int,
                   landmarks_w: np.ndarray) -> Tuple[List[Tuple[np.ndarray, float]], list]:
    """Place ``count`` spherical lesions inside organs, away from every landmark.

    Each lesion picks an organ of :data:`LESION_ORGANS` (by weight) and tries up to 20
    random centres inside it that keep 6 mm from every landmark and 4 mm from the other
    lesions and whose sphere lies inside the organ; a lesion that finds none is dropped.

    Args:
        model: the :class:`~.phantom.PhantomModel` (its ``organs`` and ``deformation``).
        rng: the lesion random generator.
        count: how many lesions to try.
        landmarks_w: ``(N, 3)`` landmark positions, world LPS mm.

    Returns:
        ``(lesions, items)``: ``[(centre world mm, radius mm), ...]`` and the matching
        painting items ``(label, WorldSphere, allow)``.
    """
    names = [o[0] for o in LESION_ORGANS]
    probs = np.array([o[1] for o in LESION_ORGANS])
    probs /= probs.sum()
    lesions, items = [], []
    dirs = np.concatenate([np.zeros((1, 3)), np.eye(3), -np.eye(3)])
    for _ in range(count):
        k = rng.choice(len(names), p=probs)
        organ, radius_range = names[k], LESION_ORGANS[k][2]
        shape = model.organs[organ]
        for _attempt in range(20):
            radius = rng.uniform(*radius_range)
            local = rng.uniform(-0.75, 0.75, size=3) * shape.ax
            centre_t = shape.c + shape.R @ local
            centre_w = model.deformation.to_world(centre_t[None])[0]
            if np.min(np.linalg.norm(landmarks_w - centre_w, axis=1)) < radius + 6.0:
                continue
            if any(np.linalg.norm(c - centre_w) < r + radius + 4 for c, r in lesions):
                continue
            probe = centre_w + 0.8 * radius * dirs
            if np.all(model.label_at(probe, items) == label_id(organ)):
                lesions.append((centre_w, float(radius)))
                items.append((label_id('lesion'), WorldSphere(centre_w, radius),
                              allow_only(organ)))
                break
    return lesions, items


def ensure_inside_parents(model, lm_w: np.ndarray,
                          extra_items: Sequence = ()) -> Tuple[np.ndarray, List[str]]:
    """Check that every landmark lies in its parent structure.

    The recipe guarantees it for all seeds tested (thousands); should a rare subject still
    violate it, the landmark moves to the nearest point (2 mm steps, up to 16 mm) inside its
    parent.

    Args:
        model: the phantom.
        lm_w: ``(N, 3)`` world positions (LPS mm) of :data:`~.anatomy.LANDMARK_NAMES`.
        extra_items: painting items beyond the model's own (the lesions).

    Returns:
        ``(positions, moved names)``: a copy with the moved landmarks, or ``lm_w`` itself
        when none moved.

    Raises:
        RuntimeError: a landmark has no point of its parent within 16 mm.
    """
    want = np.array([label_id(LANDMARK_PARENTS[n]) for n in LANDMARK_NAMES])
    got = model.label_at(lm_w, extra_items)
    bad = np.nonzero(got != want)[0]
    if bad.size == 0:
        return lm_w, []
    g = np.stack(np.meshgrid(*[np.arange(-8, 9)] * 3, indexing='ij'), -1).reshape(-1, 3)
    g = g[np.argsort(np.linalg.norm(g, axis=1), kind='stable')][1:] * 2.0  # nearest first
    lm_w = lm_w.copy()
    for i in bad:
        cand = lm_w[i] + g
        inside = np.nonzero(model.label_at(cand, extra_items) == want[i])[0]
        if inside.size == 0:
            raise RuntimeError(f'synthetic landmark {LANDMARK_NAMES[i]!r} lies outside its '
                               f'parent {LANDMARK_PARENTS[LANDMARK_NAMES[i]]!r}; please '
                               'report the seed.')
        lm_w[i] = cand[inside[0]]
    return lm_w, [LANDMARK_NAMES[i] for i in bad]
