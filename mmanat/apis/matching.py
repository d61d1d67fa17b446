"""Matching points between embedded images (SPEC 1.5 steps 3-4, SPEC 2 stable points).

Similarity of a query ``q`` (template) and a target fine voxel ``v`` (the reference of SPEC
1.5)::

    sim(q, v) = ( f_q . F(v)  +  c_q . C_up(v) / |C_up(v)|  [+ s_q . S(v)] ) / L

``F``, ``S``: the target's fine and semantic maps; ``C_up``: the coarse map upsampled
trilinearly to the fine grid (in physical coordinates) and re-normalised; ``f_q, c_q, s_q``:
the template maps sampled trilinearly at the query point and re-normalised; ``L`` = number of
levels (2, or 3 with a semantic map in both images). Scores are therefore <= 1.

Because trilinear interpolation is linear, ``c_q . C_up(v) = upsample(c_q . C)(v)``: the
coarse term is computed on the small coarse grid and interpolated, instead of materialising
``C_up`` (same numbers, a fraction of the work). All points of a call are processed in chunks
of matrix products on the maps' device: there is no Python loop over points.

Methods:

* ``'reference'``: the argmax of ``sim`` over every target fine voxel.
* ``'coarse_to_fine'``: a two-level search. Level 1 scores blocks of ``pool`` fine voxels
  (default 2x2x2, i.e. 8 mm) with the coarse similarity at the block centre plus the fine (and
  semantic) similarity to the block's mean fine embedding - ``pool``^3 times fewer candidates
  than the reference; level 2 takes the argmax of the exact ``sim`` over the fine voxels of
  the ``topk`` best blocks plus ``margin`` voxels around them. ``pool=(2, 8, 8)`` makes the
  blocks the coarse voxels (the literal "coarse argmax, then local fine search"), which
  measured clearly less accurate (README, "Matching speed and accuracy").

``refine=True`` adds sub-voxel refinement: a parabola through the similarities at the argmax
and its two neighbours along each axis moves the answer by at most half a fine voxel.

Only target voxels whose centre lies inside the original target image are candidates.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Dict, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F

from ..structures.embedding_map import EmbeddingMaps, GridGeometry
from ..structures.points import PointSet
from ..utils.exceptions import InvalidInputError

METHODS = ('reference', 'coarse_to_fine')


# ------------------------------------------------------------------------------ result
@dataclass
class MatchResult:
    """Matches of ``N`` query points in one target image.

    Attributes:
        points: ``(N, 3)`` world LPS mm of the matches.
        index: ``(N, 3)`` continuous ITK indices ``(i, j, k)`` in the ORIGINAL target image.
        index_rounded: ``(N, 3)`` int64 ITK indices (rounded, clipped to the image).
        scores: ``(N,)`` similarity of each match (<= 1).
        method: ``'reference'`` or ``'coarse_to_fine'`` (``+stable_points`` when used).
        extra: per-point extras, e.g. ``num_kept`` (stable points: pairs used) and
            ``grid_points`` (the matches before sub-voxel refinement).
    """

    points: np.ndarray
    index: np.ndarray
    index_rounded: np.ndarray
    scores: np.ndarray
    method: str
    extra: Dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.points)

    def to_pointset(self, names=None) -> PointSet:
        """The matches as a :class:`PointSet` with ``score`` and rounded voxel index columns
        ``i, j, k`` (of the original target image)."""
        extra = {'score': [float(v) for v in self.scores]}
        for a, col in enumerate('ijk'):
            extra[col] = [int(v) for v in self.index_rounded[:, a]]
        if 'num_kept' in self.extra:
            extra['num_kept'] = [int(v) for v in self.extra['num_kept']]
        return PointSet(self.points, names=names, extra=extra)


# ------------------------------------------------------------------------------ helpers
def check_query_points(points, maps: EmbeddingMaps, names=None) -> np.ndarray:
    """Validate query points against the template's original image; returns ``(N, 3)``
    world LPS mm. Raises :class:`InvalidInputError` listing every point outside."""
    src = maps.meta.get('source_path') or '<template>'
    return _check_points(points, maps.source_grid, src, names)


def _check_points(points, grid: GridGeometry, what: str, names=None) -> np.ndarray:
    if isinstance(points, PointSet):
        names = points.names if names is None else names
        points = points.xyz
    xyz = np.asarray(points, dtype=np.float64)
    if xyz.ndim == 1:
        xyz = xyz[None]
    if xyz.ndim != 2 or xyz.shape[1] != 3:
        raise InvalidInputError(f'points must be an (N, 3) array of world LPS mm, got shape '
                                f'{xyz.shape}.')
    if not np.all(np.isfinite(xyz)):
        bad = np.nonzero(~np.all(np.isfinite(xyz), axis=1))[0]
        raise InvalidInputError(f'points {bad[:20].tolist()} have non-finite coordinates.')
    inside = grid.contains_world(xyz, margin=0.5)
    if not np.all(inside):
        bad = np.nonzero(~inside)[0]
        names = names if names is not None else [f'p{i}' for i in range(len(xyz))]
        idx = grid.world_to_index(xyz[bad[:10]])
        listing = '; '.join(f'{names[i]} at {np.round(xyz[i], 2).tolist()} mm (index '
                            f'{np.round(ix, 1).tolist()})' for i, ix in zip(bad[:10], idx))
        more = f' and {len(bad) - 10} more' if len(bad) > 10 else ''
        lo, hi = grid.world_bounds()
        raise InvalidInputError(
            f'{what}: {len(bad)} query point(s) outside the template image: {listing}{more}. '
            f'The image spans {np.round(lo, 2).tolist()} to {np.round(hi, 2).tolist()} mm '
            '(LPS). Check the coordinate convention (RAS points need --space RAS) and that '
            'the points belong to the template.')
    return xyz


def sample_embeddings(maps: EmbeddingMaps, points_mm: np.ndarray, level: str,
                      device=None) -> torch.Tensor:
    """Embeddings of ``level`` at world points ``(N, 3)`` by trilinear interpolation
    (``grid_sample``, border clamping), re-normalised to unit length: ``(N, C)`` float32."""
    grid_geo = maps.grid(level)
    t = maps.maps[level]
    device = t.device if device is None else torch.device(device)
    idx = grid_geo.world_to_array_index(np.asarray(points_mm, np.float64))  # (N, 3) z, y, x
    size = np.asarray(t.shape[1:], dtype=np.float64)
    norm = np.where(size > 1, 2.0 * idx / np.maximum(size - 1, 1) - 1.0, 0.0)
    g = torch.as_tensor(norm[:, ::-1].copy(), dtype=torch.float32, device=device)  # x, y, z
    out = F.grid_sample(t[None].to(device=device, dtype=torch.float32),
                        g.view(1, 1, 1, -1, 3), mode='bilinear', padding_mode='border',
                        align_corners=True)  # (1, C, 1, 1, N)
    return F.normalize(out.view(t.shape[0], -1).t(), dim=1, eps=1e-12)


def _axis_taps(n_fine: int, s_fine: int, n_coarse: int, s_coarse: int):
    """Linear-interpolation taps of the coarse axis at the fine voxel centres."""
    f = np.arange(n_fine, dtype=np.float64)
    c = (s_fine * f + (s_fine - 1) / 2 - (s_coarse - 1) / 2) / s_coarse
    c = np.clip(c, 0, n_coarse - 1)
    lo = np.minimum(np.floor(c), max(n_coarse - 2, 0)).astype(np.int64)
    hi = np.minimum(lo + 1, n_coarse - 1)
    w = c - lo
    if n_coarse == 1:
        w = np.zeros_like(c)
    return lo, hi, w


class _PreparedTarget:
    """Target maps laid out for fast scoring on one device."""

    def __init__(self, maps: EmbeddingMaps, levels: Tuple[str, ...], device):
        self.maps = maps
        self.device = device
        self.levels = levels
        self.L = len(levels)
        fine = maps.fine.to(device=device, dtype=torch.float32)
        C = fine.shape[0]
        self.fshape = tuple(fine.shape[1:])
        self.M = int(np.prod(self.fshape))
        self.frows = fine.reshape(C, -1).t().contiguous()  # (M, C)
        self.srows = None
        if 'semantic' in levels:
            sem = maps.semantic.to(device=device, dtype=torch.float32)
            if tuple(sem.shape[1:]) != self.fshape or maps.strides['semantic'] != \
                    maps.strides['fine']:
                raise InvalidInputError(
                    f'semantic map {tuple(sem.shape)} must lie on the fine grid '
                    f'{tuple(fine.shape)} to be matched.')
            self.srows = sem.reshape(C, -1).t().contiguous()
        coarse = maps.coarse.to(device=device, dtype=torch.float32)
        self.cshape = tuple(coarse.shape[1:])
        self.Mc = int(np.prod(self.cshape))
        self.crows = coarse.reshape(C, -1).t().contiguous()  # (Mc, C)
        sf, sc = maps.strides['fine'], maps.strides['coarse']
        taps = [_axis_taps(nf, a, nc, b) for nf, a, nc, b in
                zip(self.fshape, sf, self.cshape, sc)]
        self.taps = [(torch.as_tensor(lo, device=device), torch.as_tensor(hi, device=device),
                      torch.as_tensor(w, dtype=torch.float32, device=device))
                     for lo, hi, w in taps]
        # the same interpolation as dense (fine x coarse) matrices per axis: upsampling is
        # then three small matrix products (z first: the output grows least)
        self.interp = []
        for (lo, hi, w), nc in zip(taps, self.cshape):
            mat = np.zeros((len(lo), nc), dtype=np.float32)
            np.add.at(mat, (np.arange(len(lo)), lo), 1 - w)
            np.add.at(mat, (np.arange(len(lo)), hi), w)
            self.interp.append(torch.as_tensor(mat, device=device))
        # 1 / |C_up(v)| on the fine grid (channel chunks keep the peak memory low)
        sq = torch.zeros(self.fshape, dtype=torch.float32, device=device)
        for c0 in range(0, C, 16):
            up = self._upsample(coarse[c0:c0 + 16])
            sq += (up * up).sum(0)
        self.inv_norm = sq.clamp_min(1e-24).rsqrt().reshape(-1)  # (M,)
        # candidates: fine voxels whose centre lies inside the original target image
        zz, yy, xx = np.meshgrid(*[np.arange(n) for n in self.fshape], indexing='ij')
        world = maps.grid('fine').array_index_to_world(
            np.stack([zz, yy, xx], -1).reshape(-1, 3))
        valid = maps.source_grid.contains_world(world, margin=0.5)
        if not valid.any():  # degenerate geometry: accept every voxel rather than none
            valid[:] = True
        self.valid = torch.as_tensor(valid, device=device)
        self.bias = torch.zeros(self.M, dtype=torch.float32, device=device)
        self.bias[~self.valid] = float('-inf')
        self._blocks = {}
        self._taps8 = None
        self.has_invalid = bool((~self.valid).any())

    # -------------------------------------------------------------- coarse -> fine
    def _upsample(self, x: torch.Tensor) -> torch.Tensor:
        """(B, Zc, Yc, Xc) -> (B, Zf, Yf, Xf) trilinear upsampling (separable matmuls)."""
        return _separable(x, self.interp, self.cshape, self.fshape)

    def full_scores(self, q: Dict[str, torch.Tensor], sc: torch.Tensor) -> torch.Tensor:
        """Reference similarity times L at every fine voxel, (n, M) (no validity bias)."""
        n = sc.shape[0]
        total = self._upsample(sc.view(n, *self.cshape)).view(n, -1)
        total.mul_(self.inv_norm)
        total.addmm_(q['fine'], self.frows.t())
        if self.srows is not None:
            total.addmm_(q['semantic'], self.srows.t())
        return total

    def _tap_tables(self):
        """Per fine voxel: the 8 coarse voxels of its trilinear interpolation (flat indices)
        and their weights times 1 / |C_up(v)|, built once (for searches over few voxels)."""
        if self._taps8 is None:
            Yc, Xc = self.cshape[1], self.cshape[2]
            (zl, zh, zw), (yl, yh, yw), (xl, xh, xw) = self.taps
            idx, wts = [], []
            for cz, wz in ((zl, 1 - zw), (zh, zw)):
                for cy, wy in ((yl, 1 - yw), (yh, yw)):
                    for cx, wx in ((xl, 1 - xw), (xh, xw)):
                        idx.append(((cz[:, None, None] * Yc + cy[None, :, None]) * Xc
                                    + cx[None, None, :]).reshape(-1))
                        wts.append((wz[:, None, None] * wy[None, :, None]
                                    * wx[None, None, :]).reshape(-1))
            self._taps8 = (torch.stack(idx, 1).contiguous(),
                           (torch.stack(wts, 1) * self.inv_norm[:, None]).contiguous())
        return self._taps8

    def coarse_term_at(self, sc: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        """Re-normalised upsampled coarse similarity at fine voxels ``idx`` (n, K)."""
        n, K = idx.shape
        taps, wts = self._tap_tables()
        flat = idx.reshape(-1)
        vals = sc.gather(1, taps.index_select(0, flat).view(n, K * 8)).view(n, K, 8)
        return (vals * wts.index_select(0, flat).view(n, K, 8)).sum(-1)

    def score_at(self, q: Dict[str, torch.Tensor], sc: torch.Tensor,
                 idx: torch.Tensor) -> torch.Tensor:
        """Exact (reference) similarity times L (plus the invalid bias) at fine voxels
        ``idx`` (n, K)."""
        n, K = idx.shape
        flat = idx.reshape(-1)
        out = torch.einsum('nkc,nc->nk', self.frows.index_select(0, flat).view(n, K, -1),
                           q['fine'])
        out += self.coarse_term_at(sc, idx)
        if self.srows is not None:
            out += torch.einsum('nkc,nc->nk', self.srows.index_select(0, flat).view(n, K, -1),
                                q['semantic'])
        return out + self.bias[idx]

    # -------------------------------------------------------------- candidate grid
    def blocks(self, pool: Tuple[int, int, int]):
        """The candidate grid of ``coarse_to_fine``: blocks of ``pool`` (z, y, x) fine voxels.

        Per block: the mean fine (and semantic) embedding over its valid fine voxels, the
        interpolation matrices (per axis) and inverse norms of the upsampled coarse map at the
        block centres, and a -inf bias for blocks without a valid voxel. With ``pool`` equal
        to the coarse/fine stride ratio the blocks are exactly the coarse voxels.
        """
        pool = tuple(int(v) for v in pool)
        if pool in self._blocks:
            return self._blocks[pool]
        gshape = tuple(int(math.ceil(n / p)) for n, p in zip(self.fshape, pool))
        owner = [np.arange(n) // p for n, p in zip(self.fshape, pool)]
        oz, oy, ox = np.meshgrid(*owner, indexing='ij')
        block_of = torch.as_tensor(((oz * gshape[1] + oy) * gshape[2] + ox).reshape(-1),
                                   device=self.device)
        G = int(np.prod(gshape))
        w = self.valid.to(torch.float32)
        count = torch.zeros(G, dtype=torch.float32, device=self.device)
        count.index_add_(0, block_of, w)
        pooled = {}
        for name, rows in (('fine', self.frows), ('semantic', self.srows)):
            if rows is None:
                continue
            acc = torch.zeros(G, rows.shape[1], dtype=torch.float32, device=self.device)
            acc.index_add_(0, block_of, rows * w[:, None])
            pooled[name] = acc / count.clamp_min(1)[:, None]
        # coarse map at the block centres (continuous fine index of the centre)
        sf, sc = self.maps.strides['fine'], self.maps.strides['coarse']
        mats = []
        for ng, p, nf, a, nc, b in zip(gshape, pool, self.fshape, sf, self.cshape, sc):
            first = np.arange(ng) * p
            centre = (first + np.minimum(first + p - 1, nf - 1)) / 2.0
            c = np.clip((a * centre + (a - 1) / 2 - (b - 1) / 2) / b, 0, nc - 1)
            lo = np.minimum(np.floor(c), max(nc - 2, 0)).astype(np.int64)
            hi = np.minimum(lo + 1, nc - 1)
            wt = c - lo if nc > 1 else np.zeros_like(c)
            mat = np.zeros((ng, nc), dtype=np.float32)
            np.add.at(mat, (np.arange(ng), lo), 1 - wt)
            np.add.at(mat, (np.arange(ng), hi), wt)
            mats.append(torch.as_tensor(mat, device=self.device))
        coarse = self.crows.t().reshape(-1, *self.cshape)
        up = _separable(coarse, mats, self.cshape, gshape)
        inv_norm = (up * up).sum(0).clamp_min(1e-24).rsqrt().reshape(-1)
        bias = torch.where(count > 0, 0.0, float('-inf')).to(torch.float32)
        out = dict(shape=gshape, pool=pool, pooled=pooled, mats=mats, inv_norm=inv_norm,
                   bias=bias)
        self._blocks[pool] = out
        return out


def _separable(x: torch.Tensor, mats, in_shape, out_shape) -> torch.Tensor:
    """(B, Zi, Yi, Xi) -> (B, Zo, Yo, Xo) with per-axis matrices (out x in), z first."""
    B = x.shape[0]
    Zi, Yi, Xi = in_shape
    Zo, Yo, Xo = out_shape
    wz, wy, wx = mats
    x = torch.matmul(wz, x.reshape(B, Zi, Yi * Xi))  # (B, Zo, Yi*Xi)
    x = torch.matmul(wy, x.reshape(B * Zo, Yi, Xi))  # (B*Zo, Yo, Xi)
    x = torch.matmul(x.reshape(-1, Xi), wx.t())  # (B*Zo*Yo, Xo)
    return x.view(B, Zo, Yo, Xo)


def _query_embeddings(template: EmbeddingMaps, pts: np.ndarray, levels, device):
    return {lv: sample_embeddings(template, pts, lv, device) for lv in levels}


def _chunk_size(per_point_floats: float, device, max_chunk_mb: Optional[float]) -> int:
    if max_chunk_mb is None:
        max_chunk_mb = 1024 if torch.device(device).type == 'cuda' else 256
    return max(1, int(max_chunk_mb * 2**20 // (4 * max(per_point_floats, 1))))


def _iter_chunks(N: int, size: int, progress: bool, desc: str):
    starts = range(0, N, size)
    if progress and len(starts) > 1:
        from tqdm import tqdm
        starts = tqdm(starts, desc=desc, unit='chunk', leave=False)
    for s in starts:
        yield s, min(N, s + size)


_OFFSETS27 = np.stack(np.meshgrid(*[np.arange(-1, 2)] * 3, indexing='ij'), -1).reshape(-1, 3)


def _quadratic_pinv() -> np.ndarray:
    """(10, 27) least-squares map from the 27 similarities around a voxel to the coefficients
    of s(d) = c + g.d + d^T H d / 2 (c, g_z, g_y, g_x, H_zz/2, H_yy/2, H_xx/2, H_zy, H_zx,
    H_yx)."""
    d = _OFFSETS27.astype(np.float64)
    phi = np.stack([np.ones(27), d[:, 0], d[:, 1], d[:, 2], d[:, 0] ** 2, d[:, 1] ** 2,
                    d[:, 2] ** 2, d[:, 0] * d[:, 1], d[:, 0] * d[:, 2], d[:, 1] * d[:, 2]], 1)
    return np.linalg.pinv(phi)


_PINV27 = _quadratic_pinv()


def _refine(tgt: _PreparedTarget, q, sc, idx: torch.Tensor, best: torch.Tensor):
    """Sub-voxel offsets (n, 3) (z, y, x) around the fine voxels ``idx``: the vertex of a
    3D quadratic least-squares fit of the similarity over the 3x3x3 neighbourhood (handles
    oblique, anisotropic peaks); where a neighbour is missing (image border, invalid voxel) or
    the fit is not a maximum, a parabola per axis through the available neighbours.
    Offsets are clipped to +-0.5 voxel. Returns (voxel coords (n, 3), offsets (n, 3))."""
    device = idx.device
    Zf, Yf, Xf = tgt.fshape
    coords = torch.stack([idx // (Yf * Xf), (idx // Xf) % Yf, idx % Xf], 1)
    off = torch.as_tensor(_OFFSETS27, device=device)
    sizes = torch.tensor(tgt.fshape, device=device)
    nc = coords[:, None, :] + off[None]  # (n, 27, 3)
    inside = ((nc >= 0) & (nc < sizes)).all(-1)
    nc = torch.where(inside[..., None], nc, coords[:, None, :])
    nb = (nc[..., 0] * Yf + nc[..., 1]) * Xf + nc[..., 2]
    s = tgt.score_at(q, sc, nb).to(torch.float64)  # (n, 27)
    ok = inside & torch.isfinite(s)
    b = best.to(torch.float64)[:, None]
    s = torch.where(ok, s, b)
    # per-axis parabolas through the 6 face neighbours (the fallback)
    centre = 13
    face = [(centre - 9, centre + 9), (centre - 3, centre + 3), (centre - 1, centre + 1)]
    sep = torch.zeros(len(idx), 3, dtype=torch.float64, device=device)
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
    return coords.to(torch.float64), delta.clamp(-0.5, 0.5)


def _match_core(template: EmbeddingMaps, pts: np.ndarray, tgt: _PreparedTarget,
                method: str, refine: bool, topk: int, margin: Sequence[int],
                pool: Sequence[int], max_chunk_mb, progress: bool):
    """Match world points; returns (fine continuous array index (N,3) float64, flat fine
    index (N,) int64, scores (N,) float32)."""
    device = tgt.device
    N = len(pts)
    q_all = _query_embeddings(template, pts, tgt.levels, device)
    out_idx = torch.empty(N, dtype=torch.int64, device=device)
    out_score = torch.empty(N, dtype=torch.float32, device=device)
    out_cont = torch.empty(N, 3, dtype=torch.float64, device=device)
    C = tgt.frows.shape[1]
    Yf, Xf = tgt.fshape[1], tgt.fshape[2]
    if method == 'reference':
        per_point = 2 * tgt.M + tgt.Mc
        desc = 'matching (reference)'
    else:
        blk = tgt.blocks(pool)
        G = int(np.prod(blk['shape']))
        m = [int(v) for v in margin]
        win = [p + 2 * mm for p, mm in zip(blk['pool'], m)]
        k = min(int(topk), G)
        W = k * int(np.prod(win))
        per_point = 3 * G + tgt.Mc + W * (C * (2 if tgt.srows is not None else 1) + 40)
        desc = 'matching (coarse-to-fine)'
    size = _chunk_size(per_point, device, max_chunk_mb)
    with torch.no_grad():
        for a, b in _iter_chunks(N, size, progress, desc):
            q = {kk: v[a:b] for kk, v in q_all.items()}
            sc = q['coarse'] @ tgt.crows.t()  # (n, Mc)
            if method == 'reference':
                total = tgt.full_scores(q, sc)
                best, idx = total.max(1)
                if tgt.has_invalid:  # rare: the best voxel lies outside the original image
                    bad = ~tgt.valid[idx]
                    if bad.any():
                        total = total[bad] + tgt.bias
                        best[bad], idx[bad] = total.max(1)
                del total
            else:
                gz, gy, gx = blk['shape']
                s1 = _separable(sc.view(-1, *tgt.cshape), blk['mats'], tgt.cshape,
                                blk['shape']).view(b - a, -1)
                s1.mul_(blk['inv_norm'])
                s1.addmm_(q['fine'], blk['pooled']['fine'].t())
                if tgt.srows is not None:
                    s1.addmm_(q['semantic'], blk['pooled']['semantic'].t())
                s1 += blk['bias']
                top = s1.topk(k, dim=1).indices  # (n, k) candidate blocks
                axes = []
                for ax, c in enumerate((top // (gy * gx), (top // gx) % gy, top % gx)):
                    off = torch.arange(win[ax], device=device) - m[ax]
                    axes.append((c[..., None] * blk['pool'][ax] + off)
                                .clamp(0, tgt.fshape[ax] - 1))  # (n, k, w_ax)
                idxw = ((axes[0][..., :, None, None] * Yf + axes[1][..., None, :, None]) * Xf
                        + axes[2][..., None, None, :]).reshape(b - a, -1)
                s = tgt.score_at(q, sc, idxw)
                best, j = s.max(1)
                idx = idxw.gather(1, j[:, None])[:, 0]
            if refine:
                coords, delta = _refine(tgt, q, sc, idx, best)
                out_cont[a:b] = coords + delta
            else:
                out_cont[a:b] = torch.stack([idx // (Yf * Xf), (idx // Xf) % Yf, idx % Xf],
                                            1).to(torch.float64)
            out_idx[a:b] = idx
            out_score[a:b] = best / tgt.L
    return (out_cont.cpu().numpy(), out_idx.cpu().numpy(), out_score.cpu().numpy())


def _check_pair(template: EmbeddingMaps, target: EmbeddingMaps) -> Tuple[str, ...]:
    for m in (template, target):
        if not isinstance(m, EmbeddingMaps):
            raise InvalidInputError(f'expected EmbeddingMaps (from embed() or '
                                    f'load_embeddings()), got {type(m).__name__}.')
    a, b = template.model.get('sha256'), target.model.get('sha256')
    if a and b and a != b:
        raise InvalidInputError(
            f'template maps ({template.model_id}, {template.meta.get("source_path")}) and '
            f'target maps ({target.model_id}, {target.meta.get("source_path")}) come from '
            'different models; embed both images with the same model.')
    if template.channels != target.channels:
        raise InvalidInputError(f'template maps have {template.channels} channels, target '
                                f'maps {target.channels}.')
    for lv in ('fine', 'coarse'):
        if template.strides[lv] != target.strides[lv]:
            raise InvalidInputError(f'{lv} strides differ: {template.strides[lv]} vs '
                                    f'{target.strides[lv]}.')
    levels = ['fine', 'coarse']
    if template.semantic is not None and target.semantic is not None:
        levels.append('semantic')
    return tuple(levels)


def _to_result(target: EmbeddingMaps, cont: np.ndarray, scores: np.ndarray, method: str,
               extra=None) -> MatchResult:
    pts = target.grid('fine').array_index_to_world(cont)
    return _result_from_world(target, pts, scores, method, extra)


def _result_from_world(target: EmbeddingMaps, pts: np.ndarray, scores, method, extra=None):
    index = target.source_grid.world_to_index(pts)
    rounded = np.clip(np.rint(index), 0, target.source_grid.size - 1).astype(np.int64)
    return MatchResult(points=pts, index=index, index_rounded=rounded,
                       scores=np.asarray(scores, dtype=np.float64), method=method,
                       extra=dict(extra or {}))


class Matcher:
    """Matching between one template and one target, reusable across calls (the target's
    maps are laid out once). :func:`match` is the one-call interface."""

    def __init__(self, template: EmbeddingMaps, target: EmbeddingMaps, device=None):
        self.levels = _check_pair(template, target)
        self.device = torch.device(device) if device is not None else target.device
        self.template = template
        self.target = target
        self._tgt = None
        self._back = None

    @property
    def prepared(self) -> _PreparedTarget:
        if self._tgt is None:
            self._tgt = _PreparedTarget(self.target, self.levels, self.device)
        return self._tgt

    @property
    def prepared_back(self) -> _PreparedTarget:
        """The template laid out as a target (for back-matching in stable points)."""
        if self._back is None:
            self._back = _PreparedTarget(self.template, self.levels, self.device)
        return self._back

    def match(self, points_mm, method: str = 'reference', refine: bool = True,
              stable_points: bool = False, topk: int = 4, margin=1,
              pool=2, max_chunk_mb: Optional[float] = None, progress: bool = False,
              stable_cfg: Optional[dict] = None, names=None) -> MatchResult:
        """See :func:`match`."""
        if method not in METHODS:
            raise InvalidInputError(f'unknown matching method {method!r}; use one of '
                                    f'{METHODS}.')
        if int(topk) < 1:
            raise InvalidInputError(f'topk must be >= 1, got {topk}.')
        margin = np.asarray(margin).reshape(-1)
        if margin.size == 1:
            margin = np.repeat(margin, 3)
        if margin.size != 3 or np.any(margin < 0) or np.any(np.mod(margin, 1) != 0):
            raise InvalidInputError(f'margin must be one or three ints >= 0 (z, y, x fine '
                                    f'voxels), got {margin.tolist()}.')
        margin = [int(v) for v in margin]
        pool = np.asarray(pool).reshape(-1)
        if pool.size == 1:
            pool = np.repeat(pool, 3)
        if pool.size != 3 or np.any(pool < 1) or np.any(np.mod(pool, 1) != 0):
            raise InvalidInputError(f'pool must be one or three ints >= 1 (z, y, x fine '
                                    f'voxels), got {pool.tolist()}.')
        pool = tuple(int(v) for v in pool)
        src = self.template.meta.get('source_path') or '<template>'
        pts = _check_points(points_mm, self.template.source_grid, src, names)
        if len(pts) == 0:
            e = np.zeros((0, 3))
            return MatchResult(e, e.copy(), e.astype(np.int64), np.zeros(0), method)
        if stable_points:
            return self._stable(pts, method, topk, margin, pool, max_chunk_mb, progress,
                                **dict(stable_cfg or {}))
        cont, flat, scores = _match_core(self.template, pts, self.prepared, method, refine,
                                         int(topk), margin, pool, max_chunk_mb, progress)
        extra = {}
        if refine:
            Yf, Xf = self.prepared.fshape[1:]
            grid = np.stack([flat // (Yf * Xf), (flat // Xf) % Yf, flat % Xf], 1)
            extra['grid_points'] = self.target.grid('fine').array_index_to_world(grid)
        return _to_result(self.target, cont, scores, method, extra)

    # -------------------------------------------------------------- stable points
    def _stable(self, pts, method, topk, margin, pool, max_chunk_mb, progress, radius: int = 2,
                iterations: int = 4, score_thr: float = 0.8, max_distance: float = 200.0,
                min_pairs_affine: int = 8, huber_scale: float = 1.345,
                irls_iters: int = 10):
        """Stable points (SPEC 2): vectorised over queries and their neighbourhoods."""
        N = len(pts)
        fg = self.template.grid('fine')
        r = int(radius)
        off = np.stack(np.meshgrid(*[np.arange(-r, r + 1)] * 3, indexing='ij'), -1)
        off = off.reshape(-1, 3).astype(np.float64)  # (P, 3) ITK order i, j, k
        P = len(off)
        step = (fg.direction * fg.spacing[None, :]) @ off.T  # (3, P) world mm
        nbr = pts[:, None, :] + step.T[None]  # (N, P, 3)
        inside = self.template.source_grid.contains_world(nbr.reshape(-1, 3), margin=0.5)
        inside = inside.reshape(N, P)
        q = nbr.reshape(-1, 3).copy()
        q[~inside.reshape(-1)] = np.repeat(pts, P, 0)[~inside.reshape(-1)]
        fwd, back = self.prepared, self.prepared_back
        k = q
        score = None
        k_flat = None
        for it in range(int(iterations)):
            if it % 2 == 0:  # forward: template -> target
                cont, k_flat, score = _match_core(self.template, q, fwd, method, False, topk,
                                                  margin, pool, max_chunk_mb, progress)
                k = self.target.grid('fine').array_index_to_world(cont)
            else:  # back: target -> template
                cont, _, score = _match_core(self.target, k, back, method, False, topk,
                                             margin, pool, max_chunk_mb, progress)
                q = self.template.grid('fine').array_index_to_world(cont)
        # pairs (q, k): k from the last forward step, q from the back step after it (or its
        # input when the iterations end on a forward step); the score is that last step's
        qn, kn = q.reshape(N, P, 3), k.reshape(N, P, 3)
        sn = score.reshape(N, P)
        keep = inside & (np.linalg.norm(qn - pts[:, None], axis=-1) <= max_distance) & \
            (sn > score_thr)
        # drop duplicate k (the same target fine voxel) within each query
        kf = k_flat.reshape(N, P)
        order = np.argsort(np.where(keep, kf, -1), axis=1, kind='stable')
        sorted_k = np.take_along_axis(np.where(keep, kf, -1), order, 1)
        dup_sorted = np.zeros_like(keep)
        dup_sorted[:, 1:] = (sorted_k[:, 1:] == sorted_k[:, :-1]) & (sorted_k[:, 1:] >= 0)
        dup = np.zeros_like(keep)
        np.put_along_axis(dup, order, dup_sorted, 1)
        keep &= ~dup
        ans, sc, nk = _stable_votes(pts, qn, kn, sn, keep, min_pairs_affine, huber_scale,
                                    irls_iters)
        # queries without any kept pair: plain match of the query itself
        none = nk == 0
        if none.any():
            cont, _, s0 = _match_core(self.template, pts[none], fwd, method, True, topk,
                                      margin, pool, max_chunk_mb, progress)
            ans[none] = self.target.grid('fine').array_index_to_world(cont)
            sc[none] = s0
        # clip to the target image
        src = self.target.source_grid
        idx = np.clip(src.world_to_index(ans), 0, src.size - 1)
        ans = src.index_to_world(idx)
        return _result_from_world(self.target, ans, sc, f'{method}+stable_points',
                                  dict(num_kept=nk))


def _stable_votes(q0, q, k, s, keep, min_pairs, huber_scale, iters):
    """Robust affine fit k ~ A [q - q0; 1] per query (Huber IRLS per output coordinate,
    batched) and the mean vote k - A3x3 (q - q0). Returns (answers (N, 3), scores (N,),
    number of kept pairs (N,))."""
    N, P, _ = q.shape
    Xq = torch.as_tensor(q - q0[:, None], dtype=torch.float64)
    Y = torch.as_tensor(k, dtype=torch.float64)
    w0 = torch.as_tensor(keep, dtype=torch.float64)
    nk = w0.sum(1)
    X = torch.cat([Xq, torch.ones(N, P, 1, dtype=torch.float64)], -1)  # (N, P, 4)
    A = torch.zeros(N, 3, 4, dtype=torch.float64)
    A[:, :, :3] = torch.eye(3, dtype=torch.float64)
    # translation-only start: b = mean(k - (q - q0))
    A[:, :, 3] = ((Y - Xq) * w0[..., None]).sum(1) / nk.clamp_min(1)[:, None]
    fit = nk >= min_pairs
    if fit.any():
        # fit the motion beyond the identity, D = k - (q - q0) ~ B [q - q0; 1], A = I + B, with
        # a small ridge on B so that degenerate (e.g. planar) neighbourhoods fall back to I
        Xf, Df, wf = X[fit], (Y - Xq)[fit], w0[fit]
        W = wf[:, :, None].expand(-1, -1, 3).clone()  # (n, P, 3) weights per output coord
        eye4 = torch.eye(4, dtype=torch.float64)
        Bf = None
        for _ in range(int(iters)):
            XtW = Xf.transpose(1, 2)[:, None] * W.permute(0, 2, 1)[:, :, None, :]  # n,3,4,P
            G = XtW @ Xf[:, None]  # (n, 3, 4, 4)
            lam = 1e-4 * G.diagonal(dim1=-2, dim2=-1)[..., :3].mean(-1) + 1e-9  # (n, 3)
            G = G + lam[..., None, None] * eye4
            rhs = (XtW @ Df.permute(0, 2, 1)[..., None])[..., 0]  # (n, 3, 4)
            Bf = torch.linalg.solve(G, rhs[..., None])[..., 0]  # (n, 3, 4)
            res = (Df - Xf @ Bf.transpose(1, 2)).abs()  # (n, P, 3)
            rmask = torch.where(wf[..., None] > 0, res, torch.nan)
            sigma = 1.4826 * torch.nanmedian(rmask.permute(0, 2, 1).reshape(-1, P),
                                             dim=1).values.view(-1, 3)
            delta = huber_scale * torch.nan_to_num(sigma, nan=1.0).clamp_min(1.0)
            W = wf[..., None] * torch.where(res <= delta[:, None], 1.0,
                                            delta[:, None] / res.clamp_min(1e-12))
        ok = torch.isfinite(Bf).all(dim=(1, 2))
        idx = torch.nonzero(fit)[:, 0][ok]
        A[idx, :, :3] += Bf[ok][:, :, :3]
        A[idx, :, 3] = Bf[ok][:, :, 3]
    votes = Y - Xq @ A[:, :, :3].transpose(1, 2)  # (N, P, 3)
    ans = (votes * w0[..., None]).sum(1) / nk.clamp_min(1)[:, None]
    sc = (torch.as_tensor(s, dtype=torch.float64) * w0).sum(1) / nk.clamp_min(1)
    return ans.numpy(), sc.numpy(), nk.numpy().astype(np.int64)


def match(template_maps: EmbeddingMaps, points_mm, target_maps: EmbeddingMaps,
          method: str = 'reference', stable_points: bool = False, refine: bool = True,
          topk: int = 4, margin: Union[int, Sequence[int]] = 1,
          pool: Union[int, Sequence[int]] = 2, device=None,
          max_chunk_mb: Optional[float] = None, progress: bool = False,
          stable_cfg: Optional[dict] = None) -> MatchResult:
    """Find template points in a target image (SPEC 1.5; SPEC 2 with ``stable_points``).

    Args:
        template_maps: :class:`EmbeddingMaps` of the template (from :func:`embed` or
            :func:`load_embeddings`).
        points_mm: ``(N, 3)`` world LPS mm (or a :class:`PointSet`), 1 to 100,000+ points.
        target_maps: maps of the target, made by the same model.
        method: ``'reference'`` (argmax over every fine voxel) or ``'coarse_to_fine'``
            (coarse candidates, then a local fine search; see the module docstring).
        stable_points: SPEC 2 fixed-point structural inference (125-voxel neighbourhood,
            4 forward/back iterations, score > 0.8, Huber-robust affine fit, mean vote).
        refine: sub-voxel parabolic refinement of the argmax.
        topk: candidate blocks searched per point (``coarse_to_fine``).
        margin: fine voxels searched beyond each candidate block (z, y, x).
        pool: candidate block size in fine voxels (z, y, x); ``(2, 8, 8)`` makes the blocks
            the coarse voxels (the literal "coarse argmax"; less accurate, see README).
        device: where to compute; default: the target maps' device.
        max_chunk_mb: memory for one chunk of points (default 256 MB on CPU, 1 GB on GPU).
        progress: progress bar over chunks.
        stable_cfg: overrides of the stable-points parameters (``radius=2``,
            ``iterations=4``, ``score_thr=0.8``, ``max_distance=200``,
            ``min_pairs_affine=8``, ``huber_scale=1.345``, ``irls_iters=10``).

    Returns:
        :class:`MatchResult`: world LPS points, continuous and rounded ITK voxel indices of the
        ORIGINAL target image, scores.

    Raises:
        InvalidInputError: points outside the template (all of them listed), maps from
            different models, a bad ``method``.
    """
    return Matcher(template_maps, target_maps, device).match(
        points_mm, method=method, refine=refine, stable_points=stable_points, topk=topk,
        margin=margin, pool=pool, max_chunk_mb=max_chunk_mb, progress=progress,
        stable_cfg=stable_cfg)
