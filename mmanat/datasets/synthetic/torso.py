"""The torso plan of a phantom: body size, spine, body outline, the world placement and
deformation, and the body wall (skin, fat, muscle layers) and CT table.

Template frame (mm, before the deformation): x to the patient's left, y posterior, z
superior, ``z = 0`` at the pelvic floor, the back at about ``y = 0``.

:func:`plan_torso` draws the quantities every later builder needs and returns them as a
:class:`TorsoPlan`; builders of later regions add what they define (the diaphragm, the
heart, ...) to the same plan. Every builder takes ``(model, rng, plan)`` and draws from
``rng`` in a fixed order: :meth:`~.phantom.PhantomModel._build` calls them in one fixed
order, so a seed always gives the same subject.
"""
from __future__ import annotations

from typing import Callable, Dict, Optional

import numpy as np

from .anatomy import VERTEBRAE
from .canvas import Deformation
from .paint_rules import allow_only, label_id
from .shapes import Shape, rot_z

__all__ = ['SKIN_MM', 'Profile', 'BodyLayers', 'Table', 'TorsoPlan', 'plan_torso',
           'add_deformation', 'add_body_wall']

SKIN_MM = 2.0


# ------------------------------------------------------------------------------ profiles
class Profile:
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
        """Index into :attr:`lut` (``step`` mm bins from ``z_lo``, clipped) of template z."""
        idx = ((z - self.z0) * (1.0 / self.step)).astype(np.int32)
        np.clip(idx, 0, len(self.lut) - 1, out=idx)
        return idx


class BodyLayers(Shape):
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
        lab = np.full(depth.shape, label_id('visceral_fat'), dtype=np.int16)
        t_mus = t_fat + self.mus.lut[idx]
        lab[depth < t_mus] = label_id('muscle')
        lab[depth < t_fat] = label_id('subcutaneous_fat')
        lab[depth < SKIN_MM] = label_id('skin')
        lab[~inside] = 0
        return [(reg, lab)]

    def apply(self, canvas, parts, label, allow):
        for reg, lab in parts:  # the first item: outside its region all is background
            canvas.labels[reg] = lab


class Table(Shape):
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


# ------------------------------------------------------------------------------ the plan
class TorsoPlan:
    """What the region builders share (template mm; profiles are functions of template z).

    Set by :func:`plan_torso`: ``H``, ``W``, ``D`` (height, width, depth scales),
    ``heights``/``discs`` (vertebral body and disc heights, T1..L5), ``vz`` (vertebral body
    centre z by name), ``z_s1`` (top of the sacrum), ``z_t1_top``, ``z_top`` (neck cut),
    ``z_fh`` (femoral head centres), the body cavity profiles ``cav_back``, ``cav_front``
    (y of its posterior/anterior wall) and ``cav_hw`` (half width), ``spine_y`` (y of the
    vertebral body centres) and the scoliosis curve. Later builders add: ``offset`` and
    ``deformation`` (:func:`add_deformation`), ``vt`` (vertebra frames), ``z_sym``
    (pubic symphysis), ``z_st_top``/``z_st_bot`` (sternum), ``z_dR``/``z_dL`` and
    ``diaph``/``above``/``below`` (diaphragm), ``st_pts`` (stomach centreline), ``h_c``,
    ``Rh``, ``h_ax`` (heart centre, frame, semi-axes).
    """

    def __init__(self, **values):
        self.vt: Dict[str, dict] = {}
        self.diaph: Optional[Callable] = None
        self.__dict__.update(values)

    def cyc(self, z):
        """y of the body cavity's centre at template z."""
        return 0.5 * (self.cav_back(z) + self.cav_front(z))

    def depth(self, z):
        """Anterior-posterior depth (mm) of the body cavity at template z."""
        return self.cav_back(z) - self.cav_front(z)

    def spine_x(self, z):
        """x of the spine (scoliosis: a sine of random amplitude, period and phase)."""
        return self.sc_amp * np.sin(2 * np.pi * (z - self.z_s1) / self.sc_len + self.sc_ph)

    def spine_pt(self, z):
        """The point of the vertebral-body centreline at template z."""
        return np.array([self.spine_x(z), self.spine_y(z), z])

    def tangent(self, z):
        """Unit tangent of the vertebral-body centreline at template z."""
        t = self.spine_pt(z + 2.0) - self.spine_pt(z - 2.0)
        return t / np.linalg.norm(t)

    def vloc(self, v, lx, ly, lz):
        """Template point at local offset ``(lx, ly, lz)`` mm in the frame of vertebra ``v``."""
        d = self.vt[v]
        return d['c'] + d['R'] @ np.array([lx, ly, lz])


def plan_torso(model, rng: np.random.Generator) -> TorsoPlan:
    """Draw body scales, the spine, the body outline, fat and muscle and the spine curve.

    Sets ``model.z_top`` and the body profiles ``model.a_prof``, ``b_prof``, ``yc_prof``,
    ``fat_prof``, ``fatk_prof``, ``mus_prof``; records measures in ``model.info``.

    Args:
        model: the :class:`~.phantom.PhantomModel` being built.
        rng: its random generator (draws in a fixed order).

    Returns:
        The :class:`TorsoPlan` the region builders share.
    """
    U = rng.uniform
    H = U(0.9, 1.1)  # height scale
    W = U(0.88, 1.1)  # width scale
    D = U(0.88, 1.12)  # depth scale
    model.info.update(height_scale=H, width_scale=W, depth_scale=D)

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
    model.z_top = z_top
    vz = dict(zip(VERTEBRAE, zc))
    z_fh = 75.0 * H * U(0.95, 1.05)  # femoral head centres
    model.info.update(z_top=z_top, z_s1=z_s1)

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
    P = lambda v: Profile(zk, v, zlo, zhi)  # noqa: E731
    model.a_prof, model.b_prof, model.yc_prof = P(a_out), P(b_out), P(yc_out)
    model.fat_prof, model.fatk_prof, model.mus_prof = P(fat), P(fat * k_ant), P(mus)
    lean_back_y = y_back - SKIN_MM - fat  # posterior edge of the lean body
    cav_back = P(lean_back_y - mus)
    cav_front = P(lean_back_y - 2 * b_lean + mus)
    cav_hw = P(a_lean - mus)
    spine_y = P(lean_back_y - lean_back)
    model.info.update(fat_mm=fat0, belly=belly)

    sc_amp, sc_len, sc_ph = U(0, 6), U(350, 650), U(0, 2 * np.pi)
    return TorsoPlan(H=H, W=W, D=D, heights=heights, discs=discs, vz=vz, z_s1=z_s1,
                     z_t1_top=z_t1_top, z_top=z_top, z_fh=z_fh, cav_back=cav_back,
                     cav_front=cav_front, cav_hw=cav_hw, spine_y=spine_y, sc_amp=sc_amp,
                     sc_len=sc_len, sc_ph=sc_ph)


def add_deformation(model, rng: np.random.Generator, plan: TorsoPlan, deform: bool) -> None:
    """Place the torso in the world (random offset) and draw the smooth deformation
    (world <-> template: a small rotation plus a low-order polynomial warp).

    Sets ``model.deformation``, ``model.offset`` (template origin in world LPS mm) and the
    same on ``plan``.

    Args:
        model: the phantom being built.
        rng: its random generator.
        plan: the torso plan.
        deform: False: rigid placement only (no rotation, no warp, no draws for them).
    """
    U = rng.uniform
    z_top = plan.z_top
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
    model.deformation = Deformation(coef, box_lo, box_hi, offset)
    model.offset = offset
    plan.deformation, plan.offset = model.deformation, offset


def add_body_wall(model, rng: np.random.Generator, plan: TorsoPlan) -> None:
    """Paint the body (skin, subcutaneous fat, muscle, visceral fat) and, for 85 % of the
    subjects, the CT table below it (``model.info['table']``).

    Args:
        model: the phantom being built.
        rng: its random generator.
        plan: the torso plan (after :func:`add_deformation`).
    """
    U = rng.uniform
    offset = plan.offset
    model.add('skin', BodyLayers(model.a_prof, model.b_prof, model.yc_prof, model.fat_prof,
                                 model.fatk_prof, model.mus_prof, plan.z_top))
    if rng.uniform() < 0.85:
        model.add('table', Table(offset[1] + U(-2.0, 2.0), offset[0] + U(-10, 10)),
                  allow_only('background'))
    model.info['table'] = any(lab == label_id('table') for lab, _, _ in model.items)
