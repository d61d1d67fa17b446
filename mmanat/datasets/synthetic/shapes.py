"""Implicit shapes of the phantom, in template coordinates (see :mod:`.canvas`).

Every shape is an inside-test in template coordinates; the label of a world point is the
label of the last shape (in painting order) that contains ``T(w)`` and is allowed to
overwrite the label already there. Shapes work on either canvas of :mod:`.canvas`.
"""
from __future__ import annotations

from typing import Any, Callable, List, Optional, Sequence, Tuple

import numpy as np

Clip = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


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
