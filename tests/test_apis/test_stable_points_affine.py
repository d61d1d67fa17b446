"""Stable points (UAE, Bai et al., 2023) recover a known affine transform between a volume
and its affinely transformed copy.

The embeddings are analytic: every map voxel embeds the *anatomical* position of its centre
(for the template its world position; for the copy ``A^-1 (y - t)``) with Fourier features,
``sim(p, p') = mean_k cos(w_k . (p - p'))``, exactly 1 only at ``p = p'``. The copy's grid is
its own (axis-aligned, another extent), the template's is oblique with a non-zero origin, so
the test exercises the whole world <-> map-grid geometry of the matcher as well as the
neighbourhood fit. With an exact affine, the votes ``k - A (q - q0)`` of the 125 neighbours
average out the fine-grid quantisation of each match, so the answer is far more precise than
one fine voxel (4 mm) or one source voxel (2 mm).
"""
import numpy as np
import pytest

from tests.helpers.analytic_maps import analytic_maps, fourier_freqs
from mmanat.apis import match
from mmanat.structures.embedding_map import GridGeometry


def _rotation(axis, deg):
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    a = np.deg2rad(deg)
    K = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(a) * K + (1 - np.cos(a)) * K @ K


@pytest.fixture(scope='module')
def affine_case():
    rng = np.random.default_rng(3)
    freqs = fourier_freqs(seed=3)
    # template: oblique 2 mm grid, non-zero origin
    tpl_grid = GridGeometry((40, 48, 48), spacing=2.0, origin=(-41.0, 17.5, -233.0),
                            direction=_rotation((1.0, 2.0, 3.0), 20.0))
    # the copy: y = A x + t with rotation, anisotropic scaling and shear
    A = _rotation((0.3, -1.0, 0.5), 12.0) @ np.diag([1.08, 0.93, 1.05])
    A[0, 1] += 0.04
    t = np.array([11.3, -7.9, 5.6])
    corners = np.array([[i, j, k] for i in (0, 47) for j in (0, 47) for k in (0, 39)], float)
    world = tpl_grid.index_to_world(corners) @ A.T + t
    lo, hi = world.min(0) - 6.0, world.max(0) + 6.0
    size_xyz = np.ceil((hi - lo) / 2.0).astype(int) + 1
    tgt_grid = GridGeometry(tuple(size_xyz[::-1]), spacing=2.0, origin=lo)
    A_inv = np.linalg.inv(A)
    tpl = analytic_maps(tpl_grid, lambda w: w, freqs)
    tgt = analytic_maps(tgt_grid, lambda y: (y - t) @ A_inv.T, freqs)
    # queries well inside the template (the 5x5x5 neighbourhood spans +-8 mm)
    centre = tpl_grid.index_to_world(np.array([23.5, 23.5, 19.5]))
    offsets = rng.uniform(-18.0, 18.0, (10, 3))
    queries = centre + offsets @ tpl_grid.direction.T
    return tpl, tgt, queries, A, t


def test_stable_points_recover_a_known_affine(affine_case):
    tpl, tgt, q, A, t = affine_case
    truth = q @ A.T + t
    naive = match(tpl, q, tgt, method='reference', refine=False)
    stable = match(tpl, q, tgt, stable_points=True)
    err_naive = np.linalg.norm(naive.points - truth, axis=1)
    err = np.linalg.norm(stable.points - truth, axis=1)
    assert stable.method == 'reference+stable_points'
    # the analytic similarity is sharp: many neighbours pass the 0.8 threshold
    assert np.all(stable.extra['num_kept'] >= 40), stable.extra['num_kept']
    # the integer argmax is off by up to half a 4 mm fine voxel per axis ...
    assert err_naive.max() <= 2.0 * np.sqrt(3) + 1e-6
    # ... the neighbourhood fit is well under one 2 mm voxel, and better than the argmax
    assert err.max() < 1.0, err
    assert err.mean() < 0.5 * err_naive.mean()
    # the score is the mean of kept scores, each above the 0.8 threshold
    assert np.all((stable.scores > 0.8) & (stable.scores <= 1.0 + 1e-6))
