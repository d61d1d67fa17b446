"""Implicit shapes, the smooth deformation and the canvases the phantom is painted on.

A subject's anatomy lives in a *template* frame (the body frame, mm: x to the patient's left,
y posterior, z superior; x = 0 on the midline, y = 0 on the table top, z = 0 at the pelvic
floor). A world point ``w`` (LPS mm) maps to the template point
``T(w) = w - offset + u(w)``, where ``u`` is a smooth displacement (a small rotation plus
low-frequency cosines). Every shape is an inside-test in template coordinates; the label of a
world point is the label of the last shape (in painting order) that contains ``T(w)`` and is
allowed to overwrite the label already there.

The same shapes paint a voxel grid (:class:`GridCanvas`, evaluated only in the sub-block each
shape can reach, so a 160^3 subject takes well under a second) or a set of arbitrary points
(:class:`PointCanvas`, used to check that landmarks and lesions lie in their structures).
"""
from __future__ import annotations

from typing import Any, Callable, List, Optional, Sequence, Tuple

import numpy as np

Clip = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


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


# ------------------------------------------------------------------------------ shapes
def frame_from_axis(axis, ref=(1.0, 0.0, 0.0)) -> np.ndarray:
    """Rotation matrix whose third column is ``axis`` (normalised) and whose first column is
    ``ref`` made orthogonal to it (columns = local x, y, z axes in template coordinates)."""
    e3 = np.asarray(axis, dtype=np.float64)
    e3 = e3 / np.linalg.norm(e3)
    e1 = np.asarray(ref, dtype=np.float64)
    e1 = e1 - e1.dot(e3) * e3
    if np.linalg.norm(e1) < 1e-6:
        e1 = np.array([0.0, 1.0, 0.0]) - e3[1] * e3
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(e3, e1)
    return np.stack([e1, e2, e3], axis=1)


def rot_z(deg: float) -> np.ndarray:
    """Rotation about the template z axis."""
    a = np.deg2rad(deg)
    return np.array([[np.cos(a), -np.sin(a), 0.0], [np.sin(a), np.cos(a), 0.0], [0, 0, 1.0]])


class Shape:
    """Base class: an inside-test in template coordinates with a template bounding box."""

    clips: Sequence[Clip] = ()
    bbox: Tuple[np.ndarray, np.ndarray]

    def inside(self, tx, ty, tz) -> np.ndarray:
        raise NotImplementedError

    def _apply_clips(self, mask, tx, ty, tz):
        """AND the clip functions into ``mask``, evaluated only where ``mask`` is set."""
        if not self.clips or not mask.any():
            return mask
        x, y, z = tx[mask], ty[mask], tz[mask]
        keep = self.clips[0](x, y, z)
        for clip in self.clips[1:]:
            keep &= clip(x, y, z)
        mask[mask] = keep
        return mask

    def boxes(self) -> List[Tuple[np.ndarray, np.ndarray]]:
        """Template boxes of the parts evaluated separately (one for most shapes)."""
        return [self.bbox]

    def evaluate(self, canvas, regions=None) -> List[Tuple[Any, np.ndarray]]:
        """Where the shape is: a list of ``(region, boolean mask)`` (read-only on the canvas,
        so shapes can be evaluated in parallel threads and painted in order afterwards).
        ``regions``: the canvas regions of :meth:`boxes`, if already known."""
        reg = (canvas.regions(self.boxes()) if regions is None else regions)[0]
        if reg is None:
            return []
        tx, ty, tz = canvas.coords(reg)
        return [(reg, self._apply_clips(self.inside(tx, ty, tz), tx, ty, tz))]

    def apply(self, canvas, parts, label: int, allow: Optional[np.ndarray]) -> None:
        """Paint ``label`` on the evaluated ``parts`` where the current label is allowed."""
        for reg, mask in parts:
            if allow is not None:
                mask = mask & allow[canvas.get_labels(reg)]
            canvas.paint(reg, mask, label)

    def paint(self, canvas, label: int, allow: Optional[np.ndarray]) -> None:
        """Evaluate and paint in one go."""
        self.apply(canvas, self.evaluate(canvas), label, allow)


class Ellipsoid(Shape):
    """Rotated, optionally tapered superquadric / ellipsoidal shell.

    Local coordinates ``l = R^T (p - centre)``; inside when
    ``(|lx/a|^p + |ly/b|^p)^(q/p) + |lz/c|^q < 1`` (``p = q = 2``: an ellipsoid). ``taper``
    scales the local x/y semi-axes by ``1 + taper * lz / c`` (wider above for taper > 0).
    ``shell`` (mm) keeps only a shell of that thickness below the surface.
    """

    def __init__(self, centre, axes, rot=None, taper: float = 0.0, exps=None,
                 shell: Optional[float] = None, clips: Sequence[Clip] = (),
                 bbox_clip=None):
        self.c = np.asarray(centre, dtype=np.float64)
        self.ax = np.asarray(axes, dtype=np.float64)
        self.R = np.eye(3) if rot is None else np.asarray(rot, dtype=np.float64)
        self._identity = bool(np.allclose(self.R, np.eye(3)))
        self.taper = float(taper)
        self.exps = exps
        self.shell = shell
        self.clips = tuple(clips)
        grow = np.array([1 + abs(self.taper), 1 + abs(self.taper), 1.0])
        semi = self.ax * grow
        if exps is None:
            half = np.sqrt(((self.R * semi[None, :])**2).sum(1))
        else:
            half = (np.abs(self.R) * semi[None, :]).sum(1)
        lo, hi = self.c - half, self.c + half
        if bbox_clip is not None:
            lo = np.maximum(lo, np.asarray(bbox_clip[0], float))
            hi = np.minimum(hi, np.asarray(bbox_clip[1], float))
        self.bbox = (lo, hi)

    def _local(self, tx, ty, tz, k: int, scale: float):
        """Local coordinate ``k`` divided by ``scale`` (in-place arithmetic, float32)."""
        m = self.R[:, k] / scale
        out = tx - self.c[0]
        out *= m[0]
        if m[1] != 0.0:
            out += (ty - self.c[1]) * m[1]
        if m[2] != 0.0:
            out += (tz - self.c[2]) * m[2]
        return out

    def inside(self, tx, ty, tz):
        a, b, c = self.ax
        if self.exps is None and not self.taper:
            # ellipsoid: sum of squared scaled local coordinates, built in place
            r = self._local(tx, ty, tz, 0, a)
            r *= r
            for k, sc in ((1, b), (2, c)):
                lk = self._local(tx, ty, tz, k, sc)
                lk *= lk
                r += lk
        else:
            lx = self._local(tx, ty, tz, 0, a)
            ly = self._local(tx, ty, tz, 1, b)
            lz = self._local(tx, ty, tz, 2, c)
            if self.taper:
                s = np.maximum(1.0 + self.taper * lz, 0.05)
                lx /= s
                ly /= s
            if self.exps is None:
                r = lx * lx + ly * ly + lz * lz
            else:
                p, q = self.exps
                np.abs(lx, out=lx)
                np.abs(ly, out=ly)
                np.abs(lz, out=lz)
                r = (lx**p + ly**p)**(q / p) + lz**q
        if self.shell is None:
            return r < 1.0
        inner = (1.0 - self.shell / float(min(a, b, c)))**2
        return (r < 1.0) & (r > inner)


class Tube(Shape):
    """Union of capsules along a polyline with linearly varying radius."""

    def __init__(self, points, radii, clips: Sequence[Clip] = ()):
        self.p = np.asarray(points, dtype=np.float64)
        r = np.asarray(radii, dtype=np.float64)
        self.r = np.broadcast_to(r, (len(self.p), )).copy() if r.ndim == 0 or r.size == 1 \
            else r
        if len(self.p) < 2 or len(self.r) != len(self.p):
            raise ValueError('a tube needs >= 2 points and one radius per point')
        self.clips = tuple(clips)
        rr = self.r.max()
        self.bbox = (self.p.min(0) - rr, self.p.max(0) + rr)

    def boxes(self):
        out = []
        for a, b, ra, rb in zip(self.p[:-1], self.p[1:], self.r[:-1], self.r[1:]):
            rr = max(ra, rb)
            out.append((np.minimum(a, b) - rr, np.maximum(a, b) + rr))
        return out

    def evaluate(self, canvas, regions=None):
        if regions is None:
            regions = canvas.regions(self.boxes())
        parts = []
        for reg, a, b, ra, rb in zip(regions, self.p[:-1], self.p[1:], self.r[:-1], self.r[1:]):
            if reg is None:
                continue
            tx, ty, tz = canvas.coords(reg)
            v = b - a
            L2 = max(float(v @ v), 1e-9)
            px, py, pz = tx - a[0], ty - a[1], tz - a[2]
            t = np.clip((px * v[0] + py * v[1] + pz * v[2]) * (1.0 / L2), 0.0, 1.0)
            px -= t * v[0]
            py -= t * v[1]
            pz -= t * v[2]
            rad = ra + t * (rb - ra)
            mask = (px * px + py * py + pz * pz) < rad * rad
            parts.append((reg, self._apply_clips(mask, tx, ty, tz)))
        return parts


class WorldSphere(Shape):
    """A sphere in world coordinates (lesions: exact world centre and radius)."""

    def __init__(self, centre_world, radius: float):
        self.c = np.asarray(centre_world, dtype=np.float64)
        self.radius = float(radius)

    def boxes(self):
        return []

    def evaluate(self, canvas, regions=None):
        reg = canvas.region_world(self.c - self.radius, self.c + self.radius)
        if reg is None:
            return []
        wx, wy, wz = canvas.world(reg)
        mask = ((wx - self.c[0])**2 + (wy - self.c[1])**2
                + (wz - self.c[2])**2) < self.radius**2
        return [(reg, np.broadcast_to(mask, canvas.get_labels(reg).shape))]


def catmull_rom(points, radii, per_segment: int = 3):
    """Smooth a polyline (and its radii) with a uniform Catmull-Rom spline through the
    points, ``per_segment`` sub-segments per original segment."""
    p = np.asarray(points, dtype=np.float64)
    r = np.broadcast_to(np.asarray(radii, dtype=np.float64), (len(p), )).copy()
    if len(p) < 3 or per_segment <= 1:
        return p, r
    ext = np.concatenate([2 * p[:1] - p[1:2], p, 2 * p[-1:] - p[-2:-1]])
    t = np.arange(per_segment) / per_segment
    out = []
    for i in range(1, len(ext) - 2):
        p0, p1, p2, p3 = ext[i - 1], ext[i], ext[i + 1], ext[i + 2]
        tt = t[:, None]
        seg = 0.5 * ((2 * p1) + (-p0 + p2) * tt + (2 * p0 - 5 * p1 + 4 * p2 - p3) * tt**2
                     + (-p0 + 3 * p1 - 3 * p2 + p3) * tt**3)
        out.append(seg)
    out.append(p[-1:])
    pts = np.concatenate(out)
    s_old = np.arange(len(p))
    s_new = np.concatenate([i + t for i in range(len(p) - 1)] + [np.array([len(p) - 1.0])])
    return pts, np.interp(s_new, s_old, r)
