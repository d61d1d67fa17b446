"""Random synthetic torso phantoms (chest-abdomen-pelvis) with named landmarks.

:func:`generate_subject` draws one subject: body size and shape, organ sizes and positions,
spine curvature, fat, a smooth random deformation, optional lesions and a random field of
view, and paints an ``int16`` label map (see :mod:`.anatomy` for the structures) on a grid
with real geometry (identity direction, non-zero origin, LPS world millimetres). Landmark
positions are exact: they are analytic points of the shapes (organ centres, kidney poles,
vertebral body centres, the top of the aortic arch centreline, the tracheal bifurcation, ...)
mapped to world coordinates through the inverse of the deformation.

Patient axes (world LPS): x increases to the patient's left, y to posterior, z to superior;
the head is at high z. Arrays are ``(z, y, x)``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from ...structures import MedicalImage, PointSet
from ...utils.exceptions import InvalidInputError
from .anatomy import (LABEL_NAMES, LANDMARK_NAMES, LANDMARK_PARENTS, MAX_LABEL,
                      STRUCTURE_BY_NAME, VERTEBRAE)
from .shapes import (Deformation, Ellipsoid, GridCanvas, PointCanvas, Shape, Tube, WorldSphere,
                     catmull_rom, frame_from_axis, rot_z)

__all__ = ['SyntheticSubject', 'PhantomModel', 'generate_subject', 'DEFAULT_FOV_MM']

# default field of view (x, y, z) in mm: 176 x 144 x 160 voxels at 2 mm (~160^3)
DEFAULT_FOV_MM = (352.0, 288.0, 320.0)
SKIN_MM = 2.0


def _lab(name: str) -> int:
    return STRUCTURE_BY_NAME[name].label


def _allow(*names) -> np.ndarray:
    lut = np.zeros(MAX_LABEL + 1, dtype=bool)
    for n in names:
        lut[_lab(n)] = True
    return lut


def _deny(*names) -> np.ndarray:
    lut = np.ones(MAX_LABEL + 1, dtype=bool)
    for n in names:
        lut[_lab(n)] = False
    return lut


_BONES = ('sternum', 'ribs_left', 'ribs_right', 'clavicle_left', 'clavicle_right',
          'scapula_left', 'scapula_right', 'hip_left', 'hip_right', 'sacrum', 'femur_left',
          'femur_right', 'intervertebral_disc') + tuple(f'vertebra_{v}' for v in VERTEBRAE)
_AIRWAY = ('trachea', 'bronchus_left', 'bronchus_right')
SOFT_BODY = _allow('skin', 'subcutaneous_fat', 'muscle', 'visceral_fat')
NOT_OUTSIDE = _deny('background', 'table')
NOT_BONE = _deny('background', 'table', *_BONES, *_AIRWAY)


@dataclass
class SyntheticSubject:
    """One synthetic subject.

    Attributes:
        labels: ``int16`` label map (``(z, y, x)``) with its geometry (LPS mm).
        label_names: ``{label id: structure name}`` (the full table, the same for every
            subject, whether or not a structure is inside the field of view).
        landmarks: named world points (LPS mm), :data:`~.anatomy.LANDMARK_NAMES` in that
            order; ``extra['in_fov']`` says which lie inside the label map's grid.
        lesions: ``[(centre_xyz world mm, radius_mm), ...]``.
        meta: seed, render seed, field of view, body measures, lesion organs, ...
        model: the analytic phantom (evaluate labels anywhere with :meth:`label_at`).
    """

    labels: MedicalImage
    label_names: Dict[int, str]
    landmarks: PointSet
    lesions: List[Tuple[np.ndarray, float]]
    meta: Dict[str, Any] = field(default_factory=dict)
    model: Optional['PhantomModel'] = field(default=None, repr=False)
    # renderer cache (texture masks of this label map); init=False: dataclasses.replace()
    # starts a fresh one
    _cache: Dict[str, Any] = field(default_factory=dict, init=False, repr=False,
                                   compare=False)

    def label_at(self, points) -> np.ndarray:
        """Label of arbitrary world points ``(N, 3)`` (LPS mm), inside or outside the grid."""
        return self.model.label_at(points)


# ------------------------------------------------------------------------------ profiles
class _Profile:
    """Piecewise-linear function of template z, with a fast lookup for large arrays."""

    def __init__(self, zs, vals, z_lo, z_hi, step: float = 0.5):
        order = np.argsort(zs)
        self.zs = np.asarray(zs, float)[order]
        self.vals = np.asarray(vals, float)[order]
        self.z0, self.step = float(z_lo), float(step)
        grid = np.arange(z_lo, z_hi + step, step)
        self.lut = np.interp(grid, self.zs, self.vals).astype(np.float32)

    def __call__(self, z):
        return np.interp(z, self.zs, self.vals)

    def lookup_index(self, z):
        idx = ((z - self.z0) * (1.0 / self.step)).astype(np.int32)
        np.clip(idx, 0, len(self.lut) - 1, out=idx)
        return idx


class _BodyLayers(Shape):
    """Body outline (elliptic cross-section varying along z) split into skin, subcutaneous
    fat, muscle and the inner cavity (visceral fat), by approximate depth below the skin."""

    def __init__(self, a, b, yc, fat, fatk, mus, z_top):
        self.a, self.b, self.yc, self.fat, self.fatk, self.mus = a, b, yc, fat, fatk, mus
        self.z_top = z_top

    def boxes(self):
        a_max = float(self.a.lut.max())
        y_lo = float((self.yc.lut - self.b.lut).min())
        y_hi = float((self.yc.lut + self.b.lut).max())
        return [(np.array([-a_max, y_lo, 0.0]), np.array([a_max, y_hi, self.z_top]))]

    def evaluate(self, canvas, regions=None):
        reg = (canvas.regions(self.boxes()) if regions is None else regions)[0]
        if reg is None:
            return []
        tx, ty, tz = canvas.coords(reg)
        f32 = np.float32
        idx = self.a.lookup_index(tz)
        inv_a = (1.0 / self.a.lut).astype(f32)[idx]
        inv_b = (1.0 / self.b.lut).astype(f32)[idx]
        ux = tx * inv_a
        uy = ty - self.yc.lut[idx]
        uy *= inv_b
        post = uy > 0
        aux, auy = np.abs(ux), np.abs(uy)
        # anterior half: ellipse, rho = |u|; posterior half: superellipse of exponent 3
        # (flat back on the table), rho = (|ux|^3 + |uy|^3)^(1/3). The depth below the skin
        # is ~ (1 - rho) / |grad rho| (mm).
        gx = np.where(post, aux * aux, aux)
        gy = np.where(post, auy * auy, auy)
        rho = np.where(post, np.cbrt(gx * aux + gy * auy), np.sqrt(gx * gx + gy * gy))
        inside = rho < 1.0
        inside &= tz >= 0.0
        inside &= tz <= self.z_top
        gx *= inv_a
        gy *= inv_b
        gn = np.sqrt(gx * gx + gy * gy)
        gn += f32(1e-7)
        depth = 1.0 - rho
        depth *= np.where(post, rho * rho, rho)
        depth /= gn
        np.clip(uy, -1.0, 0.0, out=uy)  # -(anterior fraction)
        fat = self.fat.lut[idx]
        t_fat = self.fatk.lut[idx] * uy
        np.subtract(fat, t_fat, out=t_fat)
        t_fat += f32(SKIN_MM)  # skin + fat * (1 + k_ant * anterior)
        lab = np.full(depth.shape, _lab('visceral_fat'), dtype=np.int16)
        t_mus = t_fat + self.mus.lut[idx]
        lab[depth < t_mus] = _lab('muscle')
        lab[depth < t_fat] = _lab('subcutaneous_fat')
        lab[depth < SKIN_MM] = _lab('skin')
        lab[~inside] = 0
        return [(reg, lab)]

    def apply(self, canvas, parts, label, allow):
        for reg, lab in parts:  # the first item: outside its region all is background
            canvas.labels[reg] = lab


class _Table(Shape):
    """CT table below the patient, in world coordinates (not deformed with the patient)."""

    def __init__(self, y_top_world, x_centre_world, half_width=230.0, thickness=30.0,
                 curvature=3e-4):
        self.y0, self.xc = float(y_top_world), float(x_centre_world)
        self.hw, self.th, self.k = half_width, thickness, curvature

    def boxes(self):
        return []

    def evaluate(self, canvas, regions=None):
        lo = np.array([self.xc - self.hw, self.y0 - self.k * self.hw**2 - 1, -1e9])
        hi = np.array([self.xc + self.hw, self.y0 + self.th + 1, 1e9])
        reg = canvas.region_world(lo, hi)
        if reg is None:
            return []
        wx, wy, _ = canvas.world(reg)
        top = self.y0 - self.k * (wx - self.xc)**2  # concave: the sides rise
        mask = (wy >= top) & (wy <= top + self.th) & (np.abs(wx - self.xc) <= self.hw)
        return [(reg, np.broadcast_to(mask, canvas.get_labels(reg).shape))]


# ------------------------------------------------------------------------------ the model
class PhantomModel:
    """The analytic anatomy of one subject: painting items, landmarks, lesion organs."""

    def __init__(self, rng: np.random.Generator, deform: bool = True):
        self.items: List[Tuple[int, Shape, Optional[np.ndarray]]] = []
        self.landmarks_t: Dict[str, np.ndarray] = {}
        self.organs: Dict[str, Shape] = {}
        self.info: Dict[str, float] = {}
        self._build(rng, deform)

    # -------------------------------------------------------------------------- painting
    def add(self, name: str, shape: Shape, allow: Optional[np.ndarray] = None):
        self.items.append((_lab(name), shape, allow))

    def paint(self, canvas, extra_items=(), workers: int = 2):
        """Paint every item in order. On a grid, shapes are evaluated in ``workers`` threads
        (numpy releases the GIL) and painted in order as their results come in."""
        items = list(self.items) + list(extra_items)
        # the regions of all shapes' boxes in one vectorised call
        boxes = [shape.boxes() for _, shape, _ in items]
        flat = canvas.regions([b for bs in boxes for b in bs])
        regions, k = [], 0
        for bs in boxes:
            regions.append(flat[k:k + len(bs)])
            k += len(bs)
        jobs = list(zip(items, regions))
        if workers > 1 and isinstance(canvas, GridCanvas):
            from concurrent.futures import ThreadPoolExecutor
            with ThreadPoolExecutor(max_workers=workers) as pool:
                results = pool.map(lambda job: job[0][1].evaluate(canvas, job[1]), jobs)
                for (label, shape, allow), parts in zip(items, results):
                    shape.apply(canvas, parts, label, allow)
        else:
            for (label, shape, allow), regs in jobs:
                shape.apply(canvas, shape.evaluate(canvas, regs), label, allow)
        return canvas

    def label_at(self, points, extra_items=()) -> np.ndarray:
        canvas = PointCanvas(self.deformation, points)
        return self.paint(canvas, extra_items).labels

    # -------------------------------------------------------------------------- anatomy
    def _build(self, rng: np.random.Generator, deform: bool):  # noqa: C901 (one long recipe)
        U = rng.uniform
        H = U(0.9, 1.1)  # height scale
        W = U(0.88, 1.1)  # width scale
        D = U(0.88, 1.12)  # depth scale
        self.info.update(height_scale=H, width_scale=W, depth_scale=D)

        # ---- spine: vertebral body heights and centres (bottom-up from the sacrum top)
        z_s1 = 185.0 * H * U(0.96, 1.04)
        h_l = np.array([25.0, 26.0, 27.0, 27.5, 28.0]) * H * U(0.93, 1.07)  # L1..L5
        d_l = np.array([9.0, 9.0, 9.5, 9.5, 10.0]) * H * U(0.85, 1.15)  # disc below L1..L5
        h_t = np.linspace(16.0, 22.0, 12) * H * U(0.93, 1.07)  # T1..T12
        d_t = np.linspace(3.5, 5.0, 12) * H * U(0.85, 1.15)  # disc below T1..T12
        heights = np.concatenate([h_t, h_l])
        discs = np.concatenate([d_t, d_l])
        zc = np.zeros(17)
        z = z_s1
        for i in range(16, -1, -1):  # L5 up to T1
            z += discs[i]
            zc[i] = z + heights[i] / 2
            z += heights[i]
        z_t1_top = z
        z_top = z_t1_top + 45.0 * H
        self.z_top = z_top
        vz = dict(zip(VERTEBRAE, zc))
        z_fh = 75.0 * H * U(0.95, 1.05)  # femoral head centres
        self.info.update(z_top=z_top, z_s1=z_s1)

        # ---- body profile (lean half-width aL, lean half-depth bL), fat and muscle
        zlo, zhi = -60.0, z_top + 60.0
        zk = [0.0, z_fh, z_s1 - 10, vz['L3'], vz['L1'], vz['T10'], vz['T7'], vz['T4'],
              vz['T2'], vz['T1'], z_t1_top + 20, z_top]
        a_lean = np.array([150, 158, 146, 132, 134, 142, 146, 146, 148, 132, 88, 62], float)
        b_lean = np.array([96, 98, 92, 86, 88, 94, 98, 96, 88, 78, 60, 54], float)
        a_lean = a_lean * W * (1 + 0.04 * rng.standard_normal(len(zk)))
        b_lean = b_lean * D * (1 + 0.04 * rng.standard_normal(len(zk)))
        fat0 = float(np.exp(U(np.log(5.0), np.log(32.0))))
        fat_prof = np.array([1.2, 1.3, 1.1, 1.0, 0.9, 0.7, 0.6, 0.6, 0.6, 0.5, 0.4, 0.4])
        fat = fat0 * fat_prof
        belly = U(0.1, 1.6)
        k_ant = np.array([0.3, 0.3, 0.8, 1.0, 0.9, 0.4, 0.3, 0.3, 0.2, 0.1, 0.0, 0.0]) * belly
        mus = np.array([26, 26, 14, 10, 11, 13, 14, 16, 20, 18, 14, 12], float) * U(0.8, 1.2)
        gap = np.array([0, 0, 4, 12, 8, 2, 0, 0, 0, 0, 0, 0], float) * U(0.0, 1.3)
        lean_back = np.array([40, 40, 48, 66, 62, 55, 50, 52, 56, 60, 62, 62], float) * D \
            * U(0.9, 1.1)
        y_back = -gap
        a_out = a_lean + SKIN_MM + fat
        b_out = b_lean + SKIN_MM + fat * (2 + k_ant) / 2
        yc_out = y_back - b_out
        P = lambda v: _Profile(zk, v, zlo, zhi)  # noqa: E731
        self.a_prof, self.b_prof, self.yc_prof = P(a_out), P(b_out), P(yc_out)
        self.fat_prof, self.fatk_prof, self.mus_prof = P(fat), P(fat * k_ant), P(mus)
        lean_back_y = y_back - SKIN_MM - fat  # posterior edge of the lean body
        cav_back = P(lean_back_y - mus)
        cav_front = P(lean_back_y - 2 * b_lean + mus)
        cav_hw = P(a_lean - mus)
        spine_y = P(lean_back_y - lean_back)
        self.info.update(fat_mm=fat0, belly=belly)

        def cyc(z):
            return 0.5 * (cav_back(z) + cav_front(z))

        def depth(z):
            return cav_back(z) - cav_front(z)

        sc_amp, sc_len, sc_ph = U(0, 6), U(350, 650), U(0, 2 * np.pi)

        def spine_x(z):
            return sc_amp * np.sin(2 * np.pi * (z - z_s1) / sc_len + sc_ph)

        def spine_pt(z):
            return np.array([spine_x(z), spine_y(z), z])

        def tangent(z):
            t = spine_pt(z + 2.0) - spine_pt(z - 2.0)
            return t / np.linalg.norm(t)

        # ---- deformation (world -> template) and placement in the world
        offset = np.array([U(-15, 15), U(-40, 40), U(-900, -450)])
        box_lo = np.array([-200.0, -300.0, -50.0]) + offset
        box_hi = np.array([200.0, 60.0, z_top + 50]) + offset
        coef = np.zeros((3, 5, 5, 5))
        if deform:
            for c in range(3):
                for i in range(5):
                    for j in range(5):
                        for k in range(5):
                            if (i, j, k) == (0, 0, 0) or 1 in (i, j, k):
                                continue
                            order = (i > 1) * (i - 1) + (j > 1) * (j - 1) + (k > 1) * (k - 1)
                            coef[c, i, j, k] = rng.normal(0, 4.5 / order**1.5)
            ang = np.deg2rad([U(-3, 3), U(-2, 2), U(-4, 4)])  # about x, y, z
            rx, ry, rz = ang
            Rx = np.array([[1, 0, 0], [0, np.cos(rx), -np.sin(rx)], [0, np.sin(rx), np.cos(rx)]])
            Ry = np.array([[np.cos(ry), 0, np.sin(ry)], [0, 1, 0], [-np.sin(ry), 0, np.cos(ry)]])
            Rz = rot_z(np.rad2deg(rz))
            A = Rx @ Ry @ Rz - np.eye(3)
            half = (box_hi - box_lo) / 2
            for c in range(3):
                for d in range(3):
                    idx = [0, 0, 0]
                    idx[d] = 1
                    coef[c, idx[0], idx[1], idx[2]] += A[c, d] * half[d]
        self.deformation = Deformation(coef, box_lo, box_hi, offset)
        self.offset = offset

        # ================================================================ painting items
        self.add('skin', _BodyLayers(self.a_prof, self.b_prof, self.yc_prof, self.fat_prof,
                                     self.fatk_prof, self.mus_prof, z_top))
        if rng.uniform() < 0.85:
            self.add('table', _Table(offset[1] + U(-2.0, 2.0), offset[0] + U(-10, 10)),
                     _allow('background'))
        self.info['table'] = any(lab == _lab('table') for lab, _, _ in self.items)

        # ---- vertebrae geometry (needed by many structures)
        vt = {}
        for i, v in enumerate(VERTEBRAE):
            f = i / 16.0
            ax = (13.0 + 11.0 * f**1.3) * W**0.5 * U(0.95, 1.05)
            ay = (10.0 + 7.5 * f) * D**0.5 * U(0.95, 1.05)
            c = spine_pt(vz[v])
            R = frame_from_axis(tangent(vz[v]))
            vt[v] = dict(c=c, R=R, ax=ax, ay=ay, az=heights[i] / 2, lumbar=v.startswith('L'))

        def vloc(v, lx, ly, lz):
            d = vt[v]
            return d['c'] + d['R'] @ np.array([lx, ly, lz])

        # paraspinal muscles
        for s in (-1, 1):
            pts = [vloc(v, s * (vt[v]['ax'] + 14), vt[v]['ay'] + 30, 0) for v in VERTEBRAE]
            pts.append(np.array([s * 38.0, spine_y(z_s1 - 40) + 25, z_s1 - 40]))
            rad = [16 + 12 * (i / 16.0)**1.5 for i in range(17)] + [22]
            self.add('muscle', Tube(*catmull_rom(pts, rad, 2)), _allow('visceral_fat', 'muscle'))

        # spinal canal
        canal = [vloc(v, 0, vt[v]['ay'] + 11, 0) for v in VERTEBRAE]
        canal = [canal[0] + np.array([0, 0, 40.0])] + canal + \
            [np.array([0.0, spine_y(z_s1) + 25, z_s1 - 25])]
        self.add('spinal_canal', Tube(canal, 7.5), NOT_OUTSIDE)

        # intervertebral discs (between consecutive bodies and L5/S1)
        for i in range(17):
            v = VERTEBRAE[i]
            d = vt[v]
            z_bot = d['c'][2] - d['az']
            zd = z_bot - discs[i] / 2
            c = spine_pt(zd)
            self.add('intervertebral_disc',
                     Ellipsoid(c, (d['ax'], d['ay'], discs[i] / 2 + 1.5), frame_from_axis(
                         tangent(zd)), exps=(2.4, 6.0)), NOT_OUTSIDE)

        # vertebral bodies and posterior elements
        for v in VERTEBRAE:
            d = vt[v]
            name = f'vertebra_{v}'
            ax, ay = d['ax'], d['ay']
            self.add(name, Ellipsoid(d['c'], (ax, ay, d['az']), d['R'], exps=(2.4, 8.0)),
                     NOT_OUTSIDE)
            px = max(0.55 * ax, 11.5)
            r = 5.5 if d['lumbar'] else 4.2
            sp_len, sp_drop = (26.0, 4.0) if d['lumbar'] else (28.0, 20.0)
            tp_len, tp_y = (22.0, 8.0) if d['lumbar'] else (15.0, 14.0)
            base = vloc(v, 0, ay + 24, -1)
            for s in (-1, 1):
                ring = [vloc(v, s * px, 0.8 * ay, 0), vloc(v, s * px, ay + 17, -1), base]
                self.add(name, Tube(ring, r), NOT_OUTSIDE)
                self.add(name, Tube([vloc(v, s * px, ay + tp_y - 4, 0),
                                     vloc(v, s * (ax + tp_len), ay + tp_y, 0)], [r, r * 0.8]),
                         NOT_OUTSIDE)
            self.add(name, Tube([base, vloc(v, 0, ay + 24 + sp_len, -sp_drop)], [r, r * 0.9]),
                     NOT_OUTSIDE)
            self.landmarks_t[f'vertebral_body_{v}'] = d['c'].copy()

        # ---- sacrum (tapered, tilted) and pelvis
        s1 = np.array([spine_x(z_s1), spine_y(z_s1), z_s1])
        tip = np.array([0.0, spine_y(z_s1) + 55 * D, z_s1 - 115 * H])
        sac_axis = s1 - tip
        sac_len = np.linalg.norm(sac_axis)
        sac_c = (s1 + tip) / 2 + np.array([0, 4.0, 0])
        sacrum = Ellipsoid(sac_c, (34 * W, 15 * D, sac_len / 2), frame_from_axis(sac_axis),
                           taper=0.55, exps=(2.2, 3.0))
        self.add('sacrum', sacrum, NOT_OUTSIDE)
        self.landmarks_t['sacrum_centre'] = sac_c + frame_from_axis(sac_axis) @ np.array(
            [0, 0, 0.2 * sac_len / 2])

        y_fh = 0.5 * (cav_back(z_fh) + cav_front(z_fh)) + U(-5, 8)
        r_fh = 23.0 * W * U(0.92, 1.08)
        z_crest = vz['L4'] + U(-12, 8)
        yc_pel = spine_y(z_s1) - 30 * D
        pel_ax = np.array([128 * W * U(0.95, 1.05), 72 * D, 1.35 * (z_crest - z_fh)])
        z_sym = z_fh - 18 * H
        for s, side in ((1, 'left'), (-1, 'right')):
            fh = np.array([s * 88 * W, y_fh, z_fh])
            hip = f'hip_{side}'
            clips = [
                (lambda x, y, z, s=s: s * x > 38.0),
                (lambda x, y, z, z0=z_fh + 8, z1=z_crest: (z > z0) & (z < z1)),
                (lambda x, y, z, y0=yc_pel - 0.55 * pel_ax[1]: y > y0),
            ]
            self.add(hip, Ellipsoid(np.array([0.0, yc_pel, z_crest]), pel_ax, shell=7.0,
                                    clips=clips), NOT_OUTSIDE)
            # acetabular roof: a shell around the femoral head, superior-medial half
            self.add(hip, Ellipsoid(fh, [r_fh + 9] * 3, shell=8.0, clips=[
                (lambda x, y, z, z0=z_fh - 6: z > z0),
                (lambda x, y, z, s=s, x0=fh[0]: s * x < s * x0 + 6)]), NOT_OUTSIDE)
            sym = np.array([s * 6.0, cav_front(z_sym) + 14, z_sym])
            self.add(hip, Tube([fh + np.array([-s * 0.7 * r_fh, -18, 6]), sym], [10, 8]),
                     NOT_OUTSIDE)
            it = np.array([s * 55 * W, y_fh + 32, 10.0])
            self.add(hip, Tube([sym + np.array([0, 4, -12]), it,
                                fh + np.array([-s * 6, 22, -14])], [7, 11, 12]), NOT_OUTSIDE)
            # femur: head, neck, shaft
            fem = f'femur_{side}'
            gt = np.array([s * (88 + 44) * W, y_fh + 8, z_fh - 22])
            self.add(fem, Ellipsoid(fh, [r_fh] * 3), NOT_OUTSIDE)
            self.add(fem, Tube([fh, gt], [15, 16]), NOT_OUTSIDE)
            self.add(fem, Tube([gt + np.array([-s * 6, 0, -10]),
                                np.array([s * 112 * W, y_fh + 2, z_fh - 260])], [15, 13]),
                     NOT_OUTSIDE)
            self.landmarks_t[f'femoral_head_{side}'] = fh

        # ---- sternum, ribs, costal cartilage, clavicles, scapulae
        z_st_top = vz['T2'] + U(-6, 8)
        z_st_bot = vz['T9'] + U(-12, 10)
        st_top = np.array([0.0, cav_front(z_st_top) - 5, z_st_top])
        st_bot = np.array([0.0, cav_front(z_st_bot) - 6, z_st_bot])
        st_c = (st_top + st_bot) / 2
        st_R = frame_from_axis(st_top - st_bot)
        st_len = np.linalg.norm(st_top - st_bot)
        self.add('sternum', Ellipsoid(st_c, (15.0, 7.0, st_len / 2), st_R, taper=0.25,
                                      exps=(2.5, 4.0)), NOT_OUTSIDE)
        self.landmarks_t['sternum_centre'] = st_c

        rib_scale = [0.62, 0.78, 0.88, 0.94, 0.97, 1, 1, 1, 1, 0.99, 0.97, 0.93]
        rib_end = [150, 155, 155, 155, 152, 148, 142, 132, 122, 112, 92, 72]
        rib_drop = np.array([22, 40, 55, 65, 72, 78, 82, 84, 82, 78, 62, 48]) * H
        cart_ends = {}
        for s, side in ((1, 'left'), (-1, 'right')):
            for i in range(12):
                v = VERTEBRAE[i]
                zr = vz[v]
                d = vt[v]
                pts = [vloc(v, s * (d['ax'] + 5), d['ay'] + 9, 2)]
                for th in np.deg2rad(np.linspace(28, rib_end[i], 7)):
                    zz = zr + 3 - rib_drop[i] * ((1 - np.cos(th)) / 2)**1.2
                    A = cav_hw(zz) * rib_scale[i] + 3
                    B = 0.5 * (cav_back(zz) - cav_front(zz) - 4) * (0.9 + 0.1 * rib_scale[i])
                    ycen = cav_back(zz) + 3 - B
                    # posterior quadrant follows the flat back (superellipse, exponent 3)
                    if th < np.pi / 2:
                        xr_, yr_ = np.sin(th)**(2 / 3), np.cos(th)**(2 / 3)
                    else:
                        xr_, yr_ = np.sin(th), np.cos(th)
                    pts.append(np.array([s * A * xr_, ycen + B * yr_, zz]))
                pts = np.array(pts)
                self.add(f'ribs_{side}', Tube(*catmull_rom(pts, np.full(len(pts), 4.6), 2)),
                         SOFT_BODY)
                end = pts[-1]
                if i < 7:
                    zt = z_st_top - 10 - i * (z_st_top - z_st_bot - 15) / 6.5
                    tgt = np.array([s * 13.0, cav_front(zt) - 4, zt])
                    self.add('costal_cartilage', Tube([end, tgt], [4.4, 4.0]), SOFT_BODY)
                    cart_ends[(s, i)] = (end + tgt) / 2
                elif i < 10:
                    tgt = cart_ends[(s, i - 1)]
                    self.add('costal_cartilage', Tube([end, tgt], [4.2, 3.8]), SOFT_BODY)
                    cart_ends[(s, i)] = (end + tgt) / 2
            # clavicle
            zc1 = z_st_top + 6
            hw1 = cav_hw(vz['T1'])
            clav = [np.array([s * 16.0, st_top[1] - 3, zc1]),
                    np.array([s * 0.5 * hw1, cav_front(vz['T1']) - 2, zc1 + 14]),
                    np.array([s * 0.95 * hw1, cyc(vz['T1']) + 6, zc1 + 20])]
            self.add(f'clavicle_{side}', Tube(*catmull_rom(clav, [7, 7, 6.5], 3)), SOFT_BODY)
            # scapula: a thin plate behind the posterior ribs
            zsc = vz['T5']
            sc_c = np.array([s * 0.6 * cav_hw(zsc), cav_back(zsc) + 6, zsc])
            self.add(f'scapula_{side}', Ellipsoid(sc_c, (42.0, 5.0, 62.0), rot_z(-s * 15),
                                                   taper=0.35, exps=(2.0, 2.6)), SOFT_BODY)

        # ---- psoas muscles
        for s, side in ((1, 'left'), (-1, 'right')):
            pts = [vloc('T12', s * 20, 2, -8), vloc('L2', s * 32, -2, 0),
                   vloc('L4', s * 44, -10, 0), vloc('L5', s * 56, -28, -20),
                   np.array([s * 0.56 * cav_hw(z_fh), cav_front(z_fh) + 42, z_fh + 25]),
                   np.array([s * 0.62 * cav_hw(z_fh), cav_front(z_fh) + 38, z_fh - 25])]
            rad = np.array([7, 14, 20, 22, 18, 15]) * U(0.85, 1.15)
            self.add(f'psoas_{side}', Tube(*catmull_rom(pts, rad, 2)),
                     _allow('visceral_fat', 'muscle'))

        # ---- diaphragm
        z_dR = vz['T10'] + U(-12, 20) * H
        z_dL = z_dR - U(8, 25)
        hw_d = cav_hw(z_dR)
        dep_d = depth(z_dR)
        yd = cyc(z_dR) + 8
        x_r, x_l, wdome = -0.45 * hw_d, 0.45 * hw_d, 0.6 * hw_d

        def diaph(x, y):
            ny = (y - yd) / (0.5 * dep_d)
            ydrop = np.where(ny > 0, 70.0, 35.0) * ny * ny
            r_ = z_dR - 48.0 * ((x - x_r) / wdome)**2 - ydrop
            l_ = z_dL - 48.0 * ((x - x_l) / wdome)**2 - ydrop
            return np.maximum(r_, l_)

        self.diaph = diaph
        below = lambda x, y, z: z < diaph(x, y) - 2.0  # noqa: E731
        above = lambda x, y, z: z > diaph(x, y)  # noqa: E731

        # ---- lungs
        z_apex = vz['T1'] + U(5, 20)
        z_lbot = min(z_dR, z_dL) - 85 * H
        lc_half = (z_apex - z_lbot) / 2
        hw_t, dep_t = cav_hw(vz['T7']), depth(vz['T7'])
        for s, side in ((1, 'left'), (-1, 'right')):
            axis = np.array([-s * 0.22, 0.12, 1.0])
            Rl = frame_from_axis(axis)
            e3 = Rl[:, 2]
            top = np.array([s * (0.36 * hw_t), cyc(vz['T3']) + 14, z_apex])
            ctr = top - e3 * lc_half * 0.98
            ctr[1] = cyc(vz['T7']) + 8
            ctr[0] = s * (0.5 * hw_t + 10)
            # recompute axis so the apex stays at `top`
            Rl = frame_from_axis(top - ctr)
            c_len = np.linalg.norm(top - ctr)
            lung = Ellipsoid(ctr, (0.5 * hw_t + 10, 0.5 * dep_t + 12, c_len), Rl, taper=-0.3,
                             clips=[above])
            self.add(f'lung_{side}', lung, _allow('visceral_fat'))
            self.organs[f'lung_{side}'] = lung
            self.landmarks_t[f'lung_apex_{side}'] = ctr + Rl[:, 2] * (c_len - 12.0)

        # ---- pancreas (before the stomach, which lies in front of it)
        zp = 0.5 * (vz['L1'] + vz['L2'])
        ay1 = vt['L1']['ay']
        pan = [np.array([-0.3 * cav_hw(zp), spine_y(zp) - ay1 - 52, zp - 18]),
               np.array([spine_x(zp) - 4, spine_y(zp) - ay1 - 42, zp]),
               np.array([spine_x(zp) + 38, spine_y(zp) - ay1 - 30, zp + 6]),
               np.array([0.55 * cav_hw(zp), spine_y(zp) - 20, zp + 16])]
        self.add('pancreas', Tube(*catmull_rom(pan, np.array([15, 12, 11, 9]) * U(0.85, 1.15),
                                                2)), _allow('visceral_fat'))

        # ---- stomach, spleen, liver, gallbladder
        hw_a = cav_hw(z_dL - 60)
        ks = U(0.85, 1.15)
        st_pts = [np.array([0.38 * hw_a, cav_back(z_dL) - 0.47 * depth(z_dL), z_dL - 28]),
                  np.array([0.5 * hw_a, cav_front(z_dL - 75) + 0.28 * depth(z_dL - 75),
                            z_dL - 75]),
                  np.array([0.12 * hw_a, cav_front(z_dL - 105) + 0.26 * depth(z_dL - 105),
                            z_dL - 105]),
                  np.array([-0.15 * hw_a, cav_front(z_dL - 95) + 0.3 * depth(z_dL - 95),
                            z_dL - 95])]
        st_r = np.array([36, 32, 23, 13]) * ks
        self.add('stomach', Tube(*catmull_rom(st_pts, st_r, 3), clips=[below]),
                 _allow('visceral_fat'))
        self.landmarks_t['stomach_centre'] = st_pts[1]

        ksp = U(0.8, 1.2)
        sp_c = np.array([0.75 * hw_a, cav_back(z_dL - 44) - 0.24 * depth(z_dL - 44), z_dL - 44])
        spleen = Ellipsoid(sp_c, np.array([22.0, 48.0, 52.0]) * ksp, rot_z(35), clips=[below])
        self.add('spleen', spleen, _allow('visceral_fat'))
        self.organs['spleen'] = spleen
        self.landmarks_t['spleen_centre'] = sp_c

        kl = U(0.88, 1.12)
        z_liv = z_dR - 70
        hw_l, dep_l = cav_hw(z_liv), depth(z_liv)
        slope = U(0.5, 0.7)
        liv_bot0 = z_dR - 178 * kl * H

        def liver_bottom(x):
            return liv_bot0 + slope * (x + hw_l)

        y_back_l, y_front_l = cav_back(z_liv) - 8, cyc(z_liv) - 0.2 * dep_l

        def liver_back(x):  # right lobe reaches the back, the left lobe stays anterior
            f = np.clip((x + 0.45 * hw_l) / (0.55 * hw_l), 0.0, 1.0)
            return y_back_l + f * (y_front_l - y_back_l)

        liver = Ellipsoid(np.array([-0.33 * hw_l, cyc(z_liv), z_liv]),
                          np.array([0.9 * hw_l, 0.56 * dep_l, 100.0 * kl]),
                          clips=[below, lambda x, y, z: (z > liver_bottom(x))
                                 & (y < liver_back(x))])
        self.add('liver', liver, _allow('visceral_fat'))
        self.organs['liver'] = liver
        xl = -0.45 * hw_l
        yl = cyc(z_liv) - 0.06 * dep_l
        self.landmarks_t['liver_centre'] = np.array(
            [xl, yl, 0.5 * (liver_bottom(xl) + diaph(xl, yl))])
        gb_x = -0.22 * hw_l
        gb_c = np.array([gb_x, cav_front(z_liv) + 0.24 * dep_l, liver_bottom(gb_x) + 12])
        self.add('gallbladder', Ellipsoid(gb_c, np.array([14.0, 14.0, 32.0]) * U(0.8, 1.2),
                                          frame_from_axis([0.3, -0.4, 1.0])),
                 _allow('liver', 'visceral_fat'))

        # ---- kidneys
        z_kl = vz['L1'] - 10 * H + U(-8, 8)
        z_kr = z_kl - U(8, 25)
        for s, side, zk_ in ((1, 'left', z_kl), (-1, 'right', z_kr)):
            kk = U(0.88, 1.12)
            c = np.array([spine_x(zk_) + s * 56 * W, spine_y(zk_) + 6, zk_])
            axes = np.array([27.0, 22.0, 55.0]) * kk
            Rk = frame_from_axis([-s * 0.3, 0.18, 1.0], ref=[1.0, -s * 0.5, 0.0])
            kid = Ellipsoid(c, axes, Rk)
            self.add(f'kidney_{side}', kid,
                     _allow('visceral_fat', 'liver', 'spleen', 'stomach', 'pancreas',
                            'lung_left', 'lung_right', f'psoas_{side}', 'muscle'))
            self.organs[f'kidney_{side}'] = kid
            self.landmarks_t[f'kidney_{side}_centre'] = c
            self.landmarks_t[f'kidney_{side}_upper_pole'] = c + Rk[:, 2] * 0.78 * axes[2]
            self.landmarks_t[f'kidney_{side}_lower_pole'] = c - Rk[:, 2] * 0.78 * axes[2]

        # ---- small bowel region, colon, bladder
        z_b4 = vz['L4']
        self.add('small_bowel', Ellipsoid(
            np.array([0.0, cav_front(z_b4) + 0.4 * depth(z_b4), z_b4 + 15]),
            np.array([0.85 * cav_hw(z_b4), 0.42 * depth(z_b4), 120.0 * H])),
            _allow('visceral_fat'))
        zc_ = {k: vz[k] for k in ('L1', 'L2', 'L3')}
        sac_front = spine_y(z_s1 - 40) - 20

        def cpt(fx, fd, z, base='front'):
            y0 = cav_front(z) if base == 'front' else cyc(z)
            return np.array([fx * cav_hw(z), y0 + fd * depth(z), z])

        colon = [cpt(-0.7, 0.45, z_s1 - 12), cpt(-0.78, 0.1, zc_['L3'], 'c'),
                 cpt(-0.66, 0.32, zc_['L1'] - 8), cpt(0.0, 0.17, zc_['L2'] - 14),
                 cpt(0.72, 0.05, zc_['L1'] + 14, 'c'), cpt(0.8, 0.15, zc_['L3'], 'c'),
                 cpt(0.45, 0.35, z_s1 - 28), cpt(0.08, 0.1, z_s1 - 58, 'c'),
                 np.array([0.0, sac_front, z_fh]), np.array([0.0, sac_front - 8, 22.0])]
        col_r = np.array([28, 25, 24, 23, 23, 21, 19, 17, 18, 12]) * U(0.85, 1.15)
        self.add('colon', Tube(*catmull_rom(colon, col_r, 3)), _allow('visceral_fat',
                                                                       'small_bowel'))
        kb = U(0.65, 1.3)
        bl_ax = np.array([42.0, 34.0, 36.0]) * kb
        bl_c = np.array([0.0, cav_front(z_sym + 30) + bl_ax[1] + 6, z_sym + 12 + bl_ax[2]])
        self.add('bladder', Ellipsoid(bl_c, bl_ax), _allow('visceral_fat', 'small_bowel',
                                                            'colon'))
        self.landmarks_t['bladder_centre'] = bl_c

        # ---- heart
        kh = U(0.88, 1.12)
        z_h = z_dL + 32 * H
        h_c = np.array([0.18 * cav_hw(z_h), cav_front(z_h) + 0.42 * depth(z_h), z_h])
        h_v = np.array([0.65, -0.45, -0.55])
        Rh = frame_from_axis(h_v, ref=[0.0, 0.0, 1.0])
        # local z = long axis (towards the apex)
        h_ax = np.array([46.0, 42.0, 62.0]) * kh
        heart = Ellipsoid(h_c, h_ax, Rh, clips=[above])
        self.add('heart', heart, _allow('visceral_fat', 'lung_left', 'lung_right'))
        self.landmarks_t['heart_centre'] = h_c

        # ---- airway (bronchi first so that the trachea owns the carina)
        z_car = vz['T5'] + U(-6, 8)

        def y_tr(z):
            return spine_y(z) - 36.0 * D**0.5

        carina = np.array([2.0, y_tr(z_car), z_car])
        r_tr = 8.5 * U(0.9, 1.1)
        for s, side, dz, dx in ((1, 'left', 48, 62), (-1, 'right', 42, 52)):
            br = [carina, carina + np.array([s * dx * 0.5, 6, -dz * 0.45]),
                  carina + np.array([s * dx, 14, -dz])]
            self.add(f'bronchus_{side}', Tube(br, [r_tr * 0.75, r_tr * 0.65, r_tr * 0.5]),
                     _allow('visceral_fat', 'lung_left', 'lung_right'))
        trach = [np.array([0.0, y_tr(z_top) - 10, z_top + 5]),
                 np.array([0.0, y_tr(vz['T2']) - 4, vz['T2']]), carina]

        # ---- aorta (with arch and iliac arteries), IVC, esophagus
        z_arch = z_car + U(22, 34)
        root = h_c - Rh[:, 2] * 0.5 * h_ax[2] + np.array([0, 0, 8.0])
        asc = np.array([h_c[0] - 14, h_c[1] - 4, z_arch - 32])
        a2 = np.array([-2.0, y_tr(z_arch) - 30, z_arch - 8])
        a3 = np.array([14.0, y_tr(z_arch) - 12, z_arch])
        a4 = np.array([24.0, y_tr(z_arch) + 10, z_arch - 10])
        desc = [np.array([22.0 - 0.6 * k, spine_y(vz[v]) - vt[v]['ay'] - 16, vz[v]])
                for k, v in enumerate(['T5', 'T7', 'T9', 'T11', 'L1', 'L2', 'L3'])]
        bif = np.array([spine_x(vz['L4']) + 4, spine_y(vz['L4']) - vt['L4']['ay'] - 14,
                        vz['L4']])
        ao = [root, asc, a2, a3, a4] + desc + [bif]
        ao_r = np.array([14, 14, 13, 13, 12, 12, 11.5, 11, 10.5, 10, 10, 9.5, 9]) * U(0.85, 1.15)
        ao_p, ao_rr = catmull_rom(ao, ao_r, 3)
        self.add('aorta', Tube(ao_p, ao_rr), NOT_BONE & ~_allow('heart'))
        arch_zone = np.arange(len(ao_p)) <= 4 * 3
        top_i = int(np.argmax(np.where(arch_zone, ao_p[:, 2], -np.inf)))
        self.landmarks_t['aortic_arch_top'] = ao_p[top_i]
        self.landmarks_t['aortic_bifurcation'] = bif
        for s in (1, -1):
            il = [bif, np.array([s * 36.0, spine_y(vz['L5']) - 38, z_s1 - 12]),
                  np.array([s * 0.55 * cav_hw(z_fh), cav_front(z_fh) + 40, z_fh + 35]),
                  np.array([s * 0.6 * cav_hw(z_fh), cav_front(z_fh) + 30, z_fh - 10])]
            self.add('aorta', Tube(*catmull_rom(il, [7.5, 7, 6, 5.5], 2)), NOT_BONE)

        ivc = [np.array([spine_x(vz['L5']) - 22, spine_y(vz['L5']) - 28, vz['L5']]),
               np.array([-24.0, spine_y(vz['L3']) - vt['L3']['ay'] - 12, vz['L3']]),
               np.array([-26.0, spine_y(vz['L1']) - vt['L1']['ay'] - 16, vz['L1']]),
               np.array([-28.0, spine_y(z_dR - 40) - 36, z_dR - 40]),
               h_c + np.array([-30.0, 18.0, -22.0])]
        self.add('inferior_vena_cava', Tube(*catmull_rom(ivc, 11.0 * U(0.85, 1.15), 2)),
                 _deny('background', 'table', *_BONES, *_AIRWAY, 'aorta', 'kidney_left',
                       'kidney_right'))
        eso = [np.array([3.0, y_tr(z_top) + 14, z_top + 5]),
               np.array([4.0, y_tr(z_car) + 17, z_car]),
               np.array([10.0, spine_y(vz['T9']) - vt['T9']['ay'] - 24, vz['T9']]),
               np.array([22.0, cyc(z_dL - 10) + 10, z_dL - 16]), st_pts[0]]
        self.add('esophagus', Tube(*catmull_rom(eso, 7.5, 2)),
                 _allow('visceral_fat', 'lung_left', 'lung_right', 'muscle'))
        self.add('trachea', Tube(trach, [r_tr * 1.05, r_tr, r_tr * 0.95]),
                 _allow('visceral_fat', 'lung_left', 'lung_right', 'muscle', 'esophagus',
                        'aorta', 'bronchus_left', 'bronchus_right'))
        self.landmarks_t['carina'] = carina

        self.info.update(z_diaphragm_right=z_dR, z_diaphragm_left=z_dL, z_carina=z_car)
        missing = set(LANDMARK_NAMES) - set(self.landmarks_t)
        assert not missing, f'landmarks without a definition: {sorted(missing)}'

    # -------------------------------------------------------------------------- landmarks
    def landmarks_world(self) -> np.ndarray:
        """World positions (LPS mm) of :data:`LANDMARK_NAMES`, in that order."""
        tp = np.stack([self.landmarks_t[n] for n in LANDMARK_NAMES])
        return self.deformation.to_world(tp)

    def body_z_range_world(self) -> Tuple[float, float]:
        """World z of the body's bottom (pelvic floor) and top (neck cut) on the midline."""
        pts = np.array([[0.0, -100.0, 0.0], [0.0, -100.0, self.z_top]])
        w = self.deformation.to_world(pts)
        return float(w[0, 2]), float(w[1, 2])


# ------------------------------------------------------------------------------ lesions
_LESION_ORGANS = (('liver', 0.42, (5.0, 16.0)), ('lung_left', 0.14, (3.0, 11.0)),
                  ('lung_right', 0.16, (3.0, 11.0)), ('kidney_left', 0.07, (5.0, 12.0)),
                  ('kidney_right', 0.07, (5.0, 12.0)), ('spleen', 0.14, (4.0, 11.0)))


def _sample_lesions(model: PhantomModel, rng: np.random.Generator, count: int,
                    landmarks_w: np.ndarray):
    """Place ``count`` spherical lesions inside organs, away from every landmark."""
    names = [o[0] for o in _LESION_ORGANS]
    probs = np.array([o[1] for o in _LESION_ORGANS])
    probs /= probs.sum()
    lesions, items = [], []
    dirs = np.concatenate([np.zeros((1, 3)), np.eye(3), -np.eye(3)])
    for _ in range(count):
        k = rng.choice(len(names), p=probs)
        organ, radius_range = names[k], _LESION_ORGANS[k][2]
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
            if np.all(model.label_at(probe, items) == _lab(organ)):
                lesions.append((centre_w, float(radius)))
                items.append((_lab('lesion'), WorldSphere(centre_w, radius), _allow(organ)))
                break
    return lesions, items


def _ensure_inside_parents(model: PhantomModel, lm_w: np.ndarray, extra_items):
    """Check that every landmark lies in its parent structure. The recipe guarantees it for
    all seeds tested (thousands); should a rare subject still violate it, the landmark moves
    to the nearest point (2 mm steps, up to 16 mm) inside its parent and its name is
    reported in ``meta['adjusted_landmarks']``."""
    want = np.array([_lab(LANDMARK_PARENTS[n]) for n in LANDMARK_NAMES])
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


# ------------------------------------------------------------------------------ subject
def _seed_sequence(seed, rng) -> np.random.SeedSequence:
    if rng is not None:
        return np.random.SeedSequence(rng.integers(0, 2**63, size=4).tolist())
    if seed is None:
        return np.random.SeedSequence()
    return np.random.SeedSequence(int(seed))


def _as_xyz(value, what) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64).reshape(-1)
    if arr.size == 1:
        arr = np.repeat(arr, 3)
    if arr.size != 3 or not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise InvalidInputError(f'{what} must be one positive number or three (x, y, z), got '
                                f'{value!r}.')
    return arr


def generate_subject(seed: Optional[int] = None, *, rng: Optional[np.random.Generator] = None,
                     spacing: Union[float, Sequence[float]] = 2.0,
                     shape: Optional[Sequence[int]] = None,
                     fov_mm: Sequence[float] = DEFAULT_FOV_MM,
                     z_range: Union[str, Tuple[float, float]] = 'random',
                     lesions: Union[str, int] = 'random', deform: bool = True,
                     check_landmarks: bool = True, threads: int = 2) -> SyntheticSubject:
    """Draw one synthetic torso subject and paint its label map.

    Args:
        seed: integer seed (the subject is a pure function of it and the options; the
            anatomy does not depend on ``spacing``/``shape``/``z_range``).
        rng: a numpy ``Generator`` to draw the subject's seed from (used instead of
            ``seed`` when given).
        spacing: voxel size in mm, one value or ``(x, y, z)``.
        shape: grid size ``(nz, ny, nx)``; default ``fov_mm / spacing``.
        fov_mm: field of view ``(x, y, z)`` in mm (default 352 x 288 x 320 mm: 176 x 144 x
            160 voxels at 2 mm).
        z_range: ``'random'``: the z extent of the field of view lies at a random height of
            the torso (pelvic floor to neck); ``'full'``: the whole torso (the grid's z size
            follows unless ``shape`` fixes it); or ``(z0, z1)`` in mm above the pelvic floor
            (template frame, before the deformation: approximate by a few mm).
        lesions: ``'random'`` (none with probability 0.5, else 1-3) or a count.
        deform: apply the smooth random deformation (rotation + low-frequency warp).
        check_landmarks: verify that every landmark lies in its parent structure (true by
            construction; a few milliseconds); see :func:`_ensure_inside_parents`.
        threads: threads that evaluate shapes while the main thread paints (the result does
            not depend on it).

    Returns:
        :class:`SyntheticSubject`.
    """
    ss = _seed_sequence(seed, rng)
    ss_anat, ss_fov, ss_les, ss_render = ss.spawn(4)
    spacing = _as_xyz(spacing, 'spacing')
    model = PhantomModel(np.random.default_rng(ss_anat), deform=deform)
    rng_fov = np.random.default_rng(ss_fov)

    # ---- grid geometry (identity direction; origin = world position of voxel 0)
    if shape is not None:
        nz, ny, nx = (int(v) for v in shape)
        if min(nz, ny, nx) < 1:
            raise InvalidInputError(f'shape must be 3 positive integers (z, y, x), got {shape}.')
        fov = np.array([nx, ny, nz]) * spacing
    else:
        fov = _as_xyz(fov_mm, 'fov_mm')
    z_bot_w, z_top_w = model.body_z_range_world()
    off = model.offset
    if isinstance(z_range, str):
        if z_range == 'full':
            z0, z1 = z_bot_w, z_top_w
            if shape is None:
                fov[2] = z1 - z0
        elif z_range == 'random':
            span = z_top_w - z_bot_w
            lo_start = z_bot_w - 15.0
            hi_start = max(lo_start, z_bot_w + span + 15.0 - fov[2])
            z0 = rng_fov.uniform(lo_start, hi_start)
        else:
            raise InvalidInputError(f"z_range must be 'random', 'full' or (z0, z1), got "
                                    f'{z_range!r}.')
    else:
        t0, t1 = (float(v) for v in z_range)
        if not t1 > t0:
            raise InvalidInputError(f'z_range {z_range!r}: need z0 < z1 (mm above the pelvic '
                                    'floor).')
        z0 = t0 + off[2]
        if shape is None:
            fov[2] = t1 - t0
    n = np.maximum(1, np.round(fov / spacing).astype(int)) if shape is None \
        else np.array([nx, ny, nz])
    x0 = off[0] - (n[0] - 1) * spacing[0] / 2 + rng_fov.uniform(-12, 12)
    y_table_bottom = off[1] + 60.0 + rng_fov.uniform(-10, 10)
    y0 = y_table_bottom - (n[1] - 1) * spacing[1]
    origin = np.array([x0, y0, z0])
    # snap the origin to a tidy value (as scanners do), keeps it non-trivial
    origin = np.round(origin * 8) / 8

    canvas = GridCanvas(model.deformation, (n[2], n[1], n[0]), spacing, origin)
    model.paint(canvas, workers=threads)

    # ---- landmarks and lesions
    lm_w = model.landmarks_world()
    rng_les = np.random.default_rng(ss_les)
    if lesions == 'random':
        count = 0 if rng_les.uniform() < 0.5 else int(rng_les.integers(1, 4))
    else:
        count = int(lesions)
    les, les_items = _sample_lesions(model, rng_les, count, lm_w) if count else ([], [])
    for label, shp, allow in les_items:
        shp.paint(canvas, label, allow)
    model.lesion_items = les_items

    labels = MedicalImage(canvas.labels, spacing=spacing, origin=origin, modality=None,
                          meta={'kind': 'label_map', 'synthetic': True})
    adjusted = []
    if check_landmarks:
        lm_w, adjusted = _ensure_inside_parents(model, lm_w, les_items)
    in_fov = labels.contains_world(lm_w, margin=-0.5)
    landmarks = PointSet(lm_w, names=list(LANDMARK_NAMES), extra={'in_fov': in_fov.tolist()})
    render_seed = int(ss_render.generate_state(1, dtype=np.uint64)[0])
    meta = dict(seed=seed, seed_entropy=ss.entropy, render_seed=render_seed,
                spacing=spacing.tolist(), shape_zyx=list(canvas.shape),
                z_range_world=[float(origin[2]), float(origin[2] + (n[2] - 1) * spacing[2])],
                body_z_range_world=[z_bot_w, z_top_w], landmark_parents=dict(LANDMARK_PARENTS),
                adjusted_landmarks=adjusted,
                lesion_organs=[LABEL_NAMES[int(model.label_at(c[None])[0])] for c, _ in les],
                **{k: (float(v) if isinstance(v, (float, np.floating)) else v)
                   for k, v in model.info.items()})
    return SyntheticSubject(labels=labels, label_names=dict(LABEL_NAMES), landmarks=landmarks,
                            lesions=les, meta=meta, model=model)
