"""Dense similarity scores of query embeddings against every voxel of a target
(SAM, Yan et al., IEEE TMI 2022, arXiv:2012.02383: the sum of global and local similarities).

Similarity of a query ``q`` (template) and a target fine voxel ``v``::

    sim(q, v) = ( f_q . F(v)  +  c_q . C_up(v) / |C_up(v)|  [+ s_q . S(v)] ) / L

``F``, ``S``: the target's fine and semantic maps; ``C_up``: the coarse map upsampled
trilinearly to the fine grid (in physical coordinates) and re-normalised; ``L`` = number of
levels. Because trilinear interpolation is linear, ``c_q . C_up(v) = upsample(c_q . C)(v)``:
:class:`PreparedTarget` computes the coarse term on the small coarse grid and interpolates it
with three small matrix products (:func:`separable_resample`) instead of materialising
``C_up``. Grids are (z, y, x); flat voxel indices are ``(z * Y + y) * X + x``.
"""
from __future__ import annotations

import math
from typing import Dict, Tuple

import numpy as np
import torch

from ..structures.embedding_map import EmbeddingMaps
from ..utils.exceptions import InvalidInputError


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


class PreparedTarget:
    """Target maps laid out for fast scoring on one device.

    Args:
        maps: the target's :class:`EmbeddingMaps`.
        levels: the levels to score (``('fine', 'coarse'[, 'semantic'])``).
        device: where the tensors live and the scores are computed.

    Attributes:
        fshape, cshape: (z, y, x) fine and coarse grid sizes; ``M``, ``Mc`` their voxel counts.
        frows, crows, srows: ``(M, C)`` fine, ``(Mc, C)`` coarse, ``(M, C)`` semantic rows
            (``srows`` is ``None`` without a semantic level).
        inv_norm: ``(M,)`` 1 / |C_up(v)| of the upsampled coarse map at each fine voxel.
        valid, bias: ``(M,)`` candidate mask (fine voxel centre inside the original target
            image) and the matching 0 / -inf score bias.
        L: number of levels (the divisor turning summed similarities into scores).
    """

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
        return separable_resample(x, self.interp, self.cshape, self.fshape)

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
        up = separable_resample(coarse, mats, self.cshape, gshape)
        inv_norm = (up * up).sum(0).clamp_min(1e-24).rsqrt().reshape(-1)
        bias = torch.where(count > 0, 0.0, float('-inf')).to(torch.float32)
        out = dict(shape=gshape, pool=pool, pooled=pooled, mats=mats, inv_norm=inv_norm,
                   bias=bias)
        self._blocks[pool] = out
        return out


def separable_resample(x: torch.Tensor, mats, in_shape, out_shape) -> torch.Tensor:
    """Resample a batch of 3D grids with one interpolation matrix per axis, z first.

    Args:
        x: ``(B, Zi, Yi, Xi)`` values.
        mats: ``(Zo x Zi, Yo x Yi, Xo x Xi)`` matrices (rows: output voxels, columns: the
            weights of the input voxels).
        in_shape: ``(Zi, Yi, Xi)``.
        out_shape: ``(Zo, Yo, Xo)``.

    Returns:
        ``(B, Zo, Yo, Xo)``.
    """
    B = x.shape[0]
    Zi, Yi, Xi = in_shape
    Zo, Yo, Xo = out_shape
    wz, wy, wx = mats
    x = torch.matmul(wz, x.reshape(B, Zi, Yi * Xi))  # (B, Zo, Yi*Xi)
    x = torch.matmul(wy, x.reshape(B * Zo, Yi, Xi))  # (B*Zo, Yo, Xi)
    x = torch.matmul(x.reshape(-1, Xi), wx.t())  # (B*Zo*Yo, Xo)
    return x.view(B, Zo, Yo, Xo)
