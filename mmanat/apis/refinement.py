"""Sub-voxel refinement of a similarity argmax.

The match of a query is the fine voxel of highest similarity; its true position usually lies
between voxel centres. :func:`quadratic_peak_offsets` moves it to the vertex of a 3D
quadratic least-squares fit of the similarity over the voxel's 3x3x3 neighbourhood (which
handles oblique, anisotropic peaks), falling back to one parabola per axis where a neighbour
is missing or the fit is not a maximum; the move is at most half a fine voxel per axis.
:func:`refine_subvoxel` gathers those 27 similarities from a :class:`PreparedTarget`.
On the maps of a 2D image (one slice) the same is done in-plane
(:func:`quadratic_peak_offsets_2d`: a 2D quadratic over the 3x3 neighbourhood, z offset 0).
Offsets and voxel coordinates are (z, y, x) fine-grid voxels.
"""
from __future__ import annotations

from typing import Dict, Tuple

import numpy as np
import torch

from ..structures.planar import is_planar
from .dense_scores import PreparedTarget

#: (27, 3) (z, y, x) offsets of a voxel's 3x3x3 neighbourhood, z slowest; row 13 is (0, 0, 0)
NEIGHBOUR_OFFSETS = np.stack(np.meshgrid(*[np.arange(-1, 2)] * 3, indexing='ij'),
                             -1).reshape(-1, 3)


def _quadratic_pinv() -> np.ndarray:
    """(10, 27) least-squares map from the 27 similarities around a voxel to the coefficients
    of s(d) = c + g.d + d^T H d / 2 (c, g_z, g_y, g_x, H_zz/2, H_yy/2, H_xx/2, H_zy, H_zx,
    H_yx)."""
    d = NEIGHBOUR_OFFSETS.astype(np.float64)
    phi = np.stack([np.ones(27), d[:, 0], d[:, 1], d[:, 2], d[:, 0] ** 2, d[:, 1] ** 2,
                    d[:, 2] ** 2, d[:, 0] * d[:, 1], d[:, 0] * d[:, 2], d[:, 1] * d[:, 2]], 1)
    return np.linalg.pinv(phi)


_PINV27 = _quadratic_pinv()
#: rows of :data:`NEIGHBOUR_OFFSETS` in the voxel's own slice (dz = 0); row 4 is the centre
PLANE_ROWS = np.nonzero(NEIGHBOUR_OFFSETS[:, 0] == 0)[0]


def _quadratic_pinv_2d() -> np.ndarray:
    """(6, 9) least-squares map from the 9 in-plane similarities to the coefficients of
    s(d) = c + g.d + d^T H d / 2 (c, g_y, g_x, H_yy/2, H_xx/2, H_yx)."""
    d = NEIGHBOUR_OFFSETS[PLANE_ROWS, 1:].astype(np.float64)
    phi = np.stack([np.ones(9), d[:, 0], d[:, 1], d[:, 0] ** 2, d[:, 1] ** 2,
                    d[:, 0] * d[:, 1]], 1)
    return np.linalg.pinv(phi)


_PINV9 = _quadratic_pinv_2d()


def quadratic_peak_offsets(scores: torch.Tensor, valid: torch.Tensor,
                           centre_score: torch.Tensor) -> torch.Tensor:
    """Sub-voxel offsets of similarity peaks from their 3x3x3 neighbourhoods.

    Where all 27 neighbours are valid and the fitted quadratic is a maximum (negative
    definite) whose vertex lies within one voxel, the offset is that vertex; otherwise a
    parabola per axis through the centre and its two face neighbours along that axis (0 on an
    axis missing a neighbour or not curving down).

    Args:
        scores: ``(n, 27)`` similarities at :data:`NEIGHBOUR_OFFSETS` around each peak voxel.
        valid: ``(n, 27)`` bool, False for neighbours outside the grid or not candidates.
        centre_score: ``(n,)`` similarity at the peak voxel (stands in for invalid ones).

    Returns:
        ``(n, 3)`` float64 (z, y, x) offsets in voxels, clipped to [-0.5, 0.5].
    """
    device = scores.device
    ok = valid & torch.isfinite(scores)
    b = centre_score.to(torch.float64)[:, None]
    s = torch.where(ok, scores.to(torch.float64), b)
    # per-axis parabolas through the 6 face neighbours (the fallback)
    centre = 13
    face = [(centre - 9, centre + 9), (centre - 3, centre + 3), (centre - 1, centre + 1)]
    sep = torch.zeros(len(s), 3, dtype=torch.float64, device=device)
    for ax, (i_m, i_p) in enumerate(face):
        sm, sp = s[:, i_m], s[:, i_p]
        okax = ok[:, i_m] & ok[:, i_p]
        denom = sm - 2 * b[:, 0] + sp
        sep[:, ax] = torch.where(okax & (denom < -1e-12),
                                 0.5 * (sm - sp) / denom.clamp_max(-1e-12), 0.0)
    # full quadratic fit where all 27 neighbours are available
    coef = s @ torch.as_tensor(_PINV27.T, device=device)  # (n, 10)
    g = coef[:, 1:4]
    H = torch.stack([torch.stack([2 * coef[:, 4], coef[:, 7], coef[:, 8]], -1),
                     torch.stack([coef[:, 7], 2 * coef[:, 5], coef[:, 9]], -1),
                     torch.stack([coef[:, 8], coef[:, 9], 2 * coef[:, 6]], -1)], 1)
    eig = torch.linalg.eigvalsh(H)
    full_ok = ok.all(1) & (eig.amax(1) < -1e-9)
    Hs = torch.where(full_ok[:, None, None], H, -torch.eye(3, dtype=H.dtype, device=device))
    full = -torch.linalg.solve(Hs, g[..., None])[..., 0]
    full_ok &= full.abs().amax(1) <= 1.0  # a vertex farther away: the fit is not trusted
    delta = torch.where(full_ok[:, None], full, sep)
    return delta.clamp(-0.5, 0.5)


def quadratic_peak_offsets_2d(scores: torch.Tensor, valid: torch.Tensor,
                              centre_score: torch.Tensor) -> torch.Tensor:
    """:func:`quadratic_peak_offsets` in one slice: the vertex of a 2D quadratic fit over the
    3x3 in-plane neighbourhood (where all 9 are valid and it is a maximum within one pixel),
    else one parabola per in-plane axis.

    Args:
        scores: ``(n, 9)`` similarities at ``NEIGHBOUR_OFFSETS[PLANE_ROWS]`` (row 4: centre).
        valid: ``(n, 9)`` bool.
        centre_score: ``(n,)`` similarity at the peak voxel.

    Returns:
        ``(n, 3)`` float64 (z, y, x) offsets, z = 0, y and x clipped to [-0.5, 0.5].
    """
    device = scores.device
    ok = valid & torch.isfinite(scores)
    b = centre_score.to(torch.float64)[:, None]
    s = torch.where(ok, scores.to(torch.float64), b)
    sep = torch.zeros(len(s), 2, dtype=torch.float64, device=device)
    for ax, (i_m, i_p) in enumerate(((1, 7), (3, 5))):  # (y -1, y +1), (x -1, x +1)
        sm, sp = s[:, i_m], s[:, i_p]
        denom = sm - 2 * b[:, 0] + sp
        sep[:, ax] = torch.where(ok[:, i_m] & ok[:, i_p] & (denom < -1e-12),
                                 0.5 * (sm - sp) / denom.clamp_max(-1e-12), 0.0)
    coef = s @ torch.as_tensor(_PINV9.T, device=device)  # (n, 6)
    g = coef[:, 1:3]
    H = torch.stack([torch.stack([2 * coef[:, 3], coef[:, 5]], -1),
                     torch.stack([coef[:, 5], 2 * coef[:, 4]], -1)], 1)
    eig = torch.linalg.eigvalsh(H)
    full_ok = ok.all(1) & (eig.amax(1) < -1e-9)
    Hs = torch.where(full_ok[:, None, None], H, -torch.eye(2, dtype=H.dtype, device=device))
    full = -torch.linalg.solve(Hs, g[..., None])[..., 0]
    full_ok &= full.abs().amax(1) <= 1.0
    delta = torch.where(full_ok[:, None], full, sep).clamp(-0.5, 0.5)
    return torch.cat([torch.zeros(len(s), 1, dtype=torch.float64, device=device), delta], 1)


def refine_subvoxel(target: PreparedTarget, q: Dict[str, torch.Tensor], sc: torch.Tensor,
                    idx: torch.Tensor, best: torch.Tensor
                    ) -> Tuple[torch.Tensor, torch.Tensor]:
    """Sub-voxel refinement of matches on a prepared target.

    Args:
        target: the target laid out for scoring.
        q: level -> ``(n, C)`` query embeddings.
        sc: ``(n, Mc)`` coarse similarities of the queries (``q['coarse'] @ crows.T``).
        idx: ``(n,)`` flat fine-voxel index of each match (the argmax).
        best: ``(n,)`` similarity (times L) at ``idx``.

    Returns:
        ``(coords, offsets)``: ``(n, 3)`` float64 (z, y, x) fine voxel of each match and its
        sub-voxel offset (:func:`quadratic_peak_offsets`; :func:`quadratic_peak_offsets_2d`
        on the maps of a 2D image); the refined continuous fine index is their sum.
    """
    device = idx.device
    Zf, Yf, Xf = target.fshape
    coords = torch.stack([idx // (Yf * Xf), (idx // Xf) % Yf, idx % Xf], 1)
    planar = is_planar(target.maps)
    off = torch.as_tensor(NEIGHBOUR_OFFSETS[PLANE_ROWS] if planar else NEIGHBOUR_OFFSETS,
                          device=device)
    sizes = torch.tensor(target.fshape, device=device)
    nc = coords[:, None, :] + off[None]  # (n, 27, 3)
    inside = ((nc >= 0) & (nc < sizes)).all(-1)
    nc = torch.where(inside[..., None], nc, coords[:, None, :])
    nb = (nc[..., 0] * Yf + nc[..., 1]) * Xf + nc[..., 2]
    s = target.score_at(q, sc, nb).to(torch.float64)  # (n, 27) (2D: (n, 9))
    if planar:
        return coords.to(torch.float64), quadratic_peak_offsets_2d(s, inside, best)
    return coords.to(torch.float64), quadratic_peak_offsets(s, inside, best)
