"""Analytic embedding maps for tests: every map voxel embeds the *anatomical* position of its
centre, ``to_anatomy(world)``, with Fourier features, so that
``sim(p, p') = mean_k cos(w_k . (p - p'))`` is exactly 1 only at ``p = p'``. Two images whose
anatomy is related by a known transform then have exactly known correspondences, whatever
their grids - an oracle model for testing matching and registration geometry."""
import numpy as np
import torch

from mmanat.structures.embedding_map import EmbeddingMaps, GridGeometry

STRIDES = dict(fine=(2, 2, 2), coarse=(4, 16, 16))
MODEL = dict(config='analytic_maps', checkpoint='', sha256='0' * 64)


def fourier_freqs(seed: int = 3, channels: int = 64):
    """Per-level frequencies (rad/mm, world x, y, z): fine 40-400 mm, coarse 200-1600 mm."""
    rng = np.random.default_rng(seed)

    def freqs(lo, hi):
        d = rng.normal(size=(channels // 2, 3))
        d /= np.linalg.norm(d, axis=1, keepdims=True)
        lam = np.exp(rng.uniform(np.log(lo), np.log(hi), channels // 2))
        return d * (2 * np.pi / lam)[:, None]

    return dict(fine=freqs(40.0, 400.0), coarse=freqs(200.0, 1600.0))


def analytic_maps(input_grid: GridGeometry, to_anatomy, freqs) -> EmbeddingMaps:
    """:class:`EmbeddingMaps` on ``input_grid`` whose voxels embed ``to_anatomy(world centre)``
    (``(V, 3)`` world LPS mm -> ``(V, 3)`` anatomical mm)."""
    maps = {}
    for level, stride in STRIDES.items():
        g = input_grid.strided(stride)
        idx = np.stack(np.meshgrid(*[np.arange(n) for n in g.shape], indexing='ij'), -1)
        anat = to_anatomy(g.array_index_to_world(idx.reshape(-1, 3)))
        phase = anat @ freqs[level].T  # (V, K)
        feat = np.concatenate([np.cos(phase), np.sin(phase)], 1) / np.sqrt(phase.shape[1])
        maps[level] = torch.from_numpy(
            feat.T.reshape(-1, *g.shape).astype(np.float32)).contiguous()
    return EmbeddingMaps(maps, dict(STRIDES), input_grid, input_grid, dict(MODEL),
                         dict(source_path='<analytic>'))
