"""The smooth deformation and the canvases the phantom is painted on.

A subject's anatomy lives in a *template* frame (the body frame, mm: x to the patient's left,
y posterior, z superior; x = 0 on the midline, y = 0 on the table top, z = 0 at the pelvic
floor). A world point ``w`` (LPS mm) maps to the template point
``T(w) = w - offset + u(w)``, where ``u`` is a smooth displacement (a small rotation plus
low-frequency cosines): :class:`Deformation`.

The shapes of :mod:`.shapes` paint a voxel grid (:class:`GridCanvas`, evaluated only in the
sub-block each shape can reach, so a 160^3 subject takes well under a second) or a set of
arbitrary points (:class:`PointCanvas`, used to check that landmarks and lesions lie in their
structures). Grid arrays are ``(z, y, x)``; spacing and origin ``(x, y, z)``, world LPS mm.
"""
from __future__ import annotations

import numpy as np

__all__ = ['Deformation', 'GridCanvas', 'PointCanvas']


# ------------------------------------------------------------------------------ deformation
class Deformation:
    """World -> template map ``T(w) = w - offset + u(w)``.

    ``u`` is a separable expansion ``u_c(w) = sum_ijk C[c,i,j,k] f_i(x) f_j(y) f_k(z)`` over
    per-axis functions ``f = [1, s, cos(pi t), cos(2 pi t), cos(3 pi t)]`` with ``t`` the
    position normalised to ``[0, 1]`` over ``box`` and ``s = 2 t - 1``. Linear terms carry a
    small rotation about the box centre. The expansion is defined everywhere (not only on a
    grid), so the same subject can be sampled on any grid or at any point.

    Args:
        coef: ``(3, 5, 5, 5)`` coefficients in mm.
        box_lo, box_hi: world box ``(x, y, z)`` the basis is normalised to.
        offset: world position of the template origin.
    """

    N_BASIS = 5

    def __init__(self, coef: np.ndarray, box_lo, box_hi, offset):
        self.coef = np.asarray(coef, dtype=np.float64)
        self.box_lo = np.asarray(box_lo, dtype=np.float64)
        self.box_hi = np.asarray(box_hi, dtype=np.float64)
        self.offset = np.asarray(offset, dtype=np.float64)
        self._coef_flat = self.coef.reshape(3, -1).T.copy()
        self.lipschitz = self._estimate_lipschitz()

    # per-axis basis functions
    def _basis(self, t: np.ndarray, axis: int) -> np.ndarray:
        lo, hi = self.box_lo[axis], self.box_hi[axis]
        s = (np.asarray(t, dtype=np.float64) - lo) * (1.0 / (hi - lo))
        c1 = np.cos(np.pi * s)
        c2 = 2.0 * c1 * c1 - 1.0  # Chebyshev recurrences: cos(2a), cos(3a)
        c3 = 2.0 * c1 * c2 - c1
        return np.stack([np.ones_like(s), 2.0 * s - 1.0, c1, c2, c3], axis=-1)

    def displacement(self, points) -> np.ndarray:
        """``u(w)`` for world points ``(N, 3)`` -> ``(N, 3)`` mm."""
        pts = np.atleast_2d(np.asarray(points, dtype=np.float64))
        bx, by, bz = (self._basis(pts[:, a], a) for a in range(3))
        n, k = len(pts), self.N_BASIS
        prod = (bx[:, :, None, None] * by[:, None, :, None] * bz[:, None, None, :])
        return prod.reshape(n, k**3) @ self._coef_flat

    def to_template(self, points) -> np.ndarray:
        """World LPS mm ``(N, 3)`` -> template mm."""
        pts = np.atleast_2d(np.asarray(points, dtype=np.float64))
        return pts - self.offset + self.displacement(pts)

    def to_world(self, tpoints, iters: int = 60, tol: float = 1e-7) -> np.ndarray:
        """Template mm ``(N, 3)`` -> world LPS mm, by fixed-point iteration (``u`` is a
        contraction: its Lipschitz constant is far below 1)."""
        tp = np.atleast_2d(np.asarray(tpoints, dtype=np.float64))
        w = tp + self.offset
        for _ in range(iters):
            w_new = tp + self.offset - self.displacement(w)
            if np.max(np.abs(w_new - w)) < tol:
                return w_new
            w = w_new
        return w

    def grid_template(self, x1d, y1d, z1d, dtype=np.float32):
        """Template coordinates ``(Tx, Ty, Tz)`` of the grid of world axes (each
        ``(nz, ny, nx)``), computed with three small tensor contractions per component."""
        bx, by, bz = (self._basis(v, a) for a, v in enumerate((x1d, y1d, z1d)))
        out = []
        axes = (np.asarray(x1d), np.asarray(y1d), np.asarray(z1d))
        for c in range(3):
            m1 = np.einsum('ijk,zk->zij', self.coef[c], bz)  # (nz, Ki, Kj)
            m2 = np.einsum('zij,yj->zyi', m1, by)  # (nz, ny, Ki)
            u = (m2.reshape(-1, m2.shape[-1]) @ bx.T).reshape(len(z1d), len(y1d), len(x1d))
            u = u.astype(dtype, copy=False)
            w = (axes[c] - self.offset[c]).astype(dtype)
            shape = [1, 1, 1]
            shape[2 - c] = -1
            u += w.reshape(shape)
            out.append(u)
        return tuple(out)

    def _estimate_lipschitz(self) -> float:
        rng = np.random.default_rng(0)
        pts = rng.uniform(self.box_lo, self.box_hi, size=(400, 3))
        h = 0.5
        jac = np.stack([(self.displacement(pts + h * e) - self.displacement(pts - h * e)) / (2 * h)
                        for e in np.eye(3)], -1)  # (N, c, axis)
        norms = np.linalg.norm(jac, ord=2, axis=(1, 2))
        return float(min(0.9, 1.3 * norms.max() + 0.01))

    def world_bboxes(self, tlo, thi, margin: float = 1.0):
        """Conservative world boxes ``(M, 3)`` of every point whose template position lies
        in the template boxes ``[tlo, thi]`` (``(M, 3)`` each), from the Lipschitz bound of
        ``u`` (one vectorised inversion for all boxes)."""
        tlo = np.atleast_2d(np.asarray(tlo, np.float64))
        thi = np.atleast_2d(np.asarray(thi, np.float64))
        tc, hh = (tlo + thi) / 2, (thi - tlo) / 2
        tol = 0.05
        wc = self.to_world(tc, iters=40, tol=tol)
        lip = self.lipschitz
        extra = lip * np.linalg.norm(hh, axis=1, keepdims=True) / (1 - lip) + margin + 2 * tol
        return wc - hh - extra, wc + hh + extra

    def world_bbox(self, tlo, thi, margin: float = 1.0):
        """:meth:`world_bboxes` for one box."""
        lo, hi = self.world_bboxes(tlo, thi, margin)
        return lo[0], hi[0]


# ------------------------------------------------------------------------------ canvases
class GridCanvas:
    """A label grid (``(nz, ny, nx)``, identity direction) painted in template coordinates."""

    def __init__(self, deformation: Deformation, shape, spacing, origin, dtype=np.int16):
        self.deformation = deformation
        self.shape = tuple(int(v) for v in shape)
        self.spacing = np.asarray(spacing, dtype=np.float64)
        self.origin = np.asarray(origin, dtype=np.float64)
        nz, ny, nx = self.shape
        self.axes = [self.origin[a] + self.spacing[a] * np.arange(n)
                     for a, n in enumerate((nx, ny, nz))]
        self.T = deformation.grid_template(*self.axes)
        self.labels = np.zeros(self.shape, dtype=dtype)

    def _slices(self, wlo, whi):
        sl = []
        for a, n in zip((2, 1, 0), self.shape):
            i0 = int(np.ceil((wlo[a] - self.origin[a]) / self.spacing[a]))
            i1 = int(np.floor((whi[a] - self.origin[a]) / self.spacing[a])) + 1
            i0, i1 = max(i0, 0), min(i1, n)
            if i1 <= i0:
                return None
            sl.append(slice(i0, i1))
        return tuple(sl)

    def region(self, tlo=None, thi=None):
        """Sub-block (tuple of slices) that can contain template box ``[tlo, thi]``;
        ``None`` when it misses the grid; the whole grid when no box is given."""
        if tlo is None:
            return (slice(None), ) * 3
        return self._slices(*self.deformation.world_bbox(tlo, thi))

    def region_world(self, wlo, whi):
        """Sub-block of the world box ``[wlo, whi]``."""
        return self._slices(np.asarray(wlo, float), np.asarray(whi, float))

    def regions(self, tboxes):
        """:meth:`region` of many template boxes ``[(tlo, thi), ...]`` at once."""
        if not tboxes:
            return []
        lo, hi = self.deformation.world_bboxes([b[0] for b in tboxes], [b[1] for b in tboxes])
        return [self._slices(a, b) for a, b in zip(lo, hi)]

    def coords(self, reg):
        return self.T[0][reg], self.T[1][reg], self.T[2][reg]

    def world(self, reg):
        sz, sy, sx = reg
        return (self.axes[0][sx][None, None, :], self.axes[1][sy][None, :, None],
                self.axes[2][sz][:, None, None])

    def get_labels(self, reg):
        return self.labels[reg]

    def paint(self, reg, mask, value):
        self.labels[reg][mask] = value


class PointCanvas:
    """The same painting, evaluated at arbitrary world points ``(N, 3)``."""

    def __init__(self, deformation: Deformation, points):
        self.deformation = deformation
        self.W = np.atleast_2d(np.asarray(points, dtype=np.float64))
        self.Tp = deformation.to_template(self.W)
        self.T = tuple(self.Tp[:, a] for a in range(3))
        self.labels = np.zeros(len(self.W), dtype=np.int16)

    def _select(self, pts, lo, hi):
        idx = np.nonzero(np.all((pts >= lo) & (pts <= hi), axis=1))[0]
        return idx if idx.size else None

    def region(self, tlo=None, thi=None):
        if tlo is None:
            return np.arange(len(self.W))
        return self._select(self.Tp, np.asarray(tlo) - 1e-6, np.asarray(thi) + 1e-6)

    def region_world(self, wlo, whi):
        return self._select(self.W, np.asarray(wlo), np.asarray(whi))

    def regions(self, tboxes):
        return [self.region(lo, hi) for lo, hi in tboxes]

    def coords(self, reg):
        return self.T[0][reg], self.T[1][reg], self.T[2][reg]

    def world(self, reg):
        return self.W[reg, 0], self.W[reg, 1], self.W[reg, 2]

    def get_labels(self, reg):
        return self.labels[reg]

    def paint(self, reg, mask, value):
        self.labels[reg[np.asarray(mask, bool)]] = value
