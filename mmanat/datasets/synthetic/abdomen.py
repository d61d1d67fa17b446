"""Abdominal and pelvic organ builders of the phantom: psoas muscles, the upper abdomen
(pancreas, stomach, spleen, liver, gallbladder), kidneys, and the lower abdomen (small
bowel, colon, bladder). Each is a function of ``(model, rng, plan)`` (see :mod:`.torso`)."""
from __future__ import annotations

import numpy as np

from .paint_rules import allow_only
from .shapes import Ellipsoid, Tube, catmull_rom, frame_from_axis, rot_z
from .torso import TorsoPlan

__all__ = ['add_psoas', 'add_upper_abdomen', 'add_kidneys', 'add_lower_abdomen']


def add_psoas(model, rng: np.random.Generator, plan: TorsoPlan) -> None:
    """Left and right psoas muscles, from T12 along the lumbar spine into the pelvis.

    Args:
        model: the :class:`~.phantom.PhantomModel` being built.
        rng: its random generator.
        plan: the torso plan (after the spine).
    """
    U = rng.uniform
    vloc, cav_hw, cav_front, z_fh = plan.vloc, plan.cav_hw, plan.cav_front, plan.z_fh
    for s, side in ((1, 'left'), (-1, 'right')):
        pts = [vloc('T12', s * 20, 2, -8), vloc('L2', s * 32, -2, 0),
               vloc('L4', s * 44, -10, 0), vloc('L5', s * 56, -28, -20),
               np.array([s * 0.56 * cav_hw(z_fh), cav_front(z_fh) + 42, z_fh + 25]),
               np.array([s * 0.62 * cav_hw(z_fh), cav_front(z_fh) + 38, z_fh - 25])]
        rad = np.array([7, 14, 20, 22, 18, 15]) * U(0.85, 1.15)
        model.add(f'psoas_{side}', Tube(*catmull_rom(pts, rad, 2)),
                  allow_only('visceral_fat', 'muscle'))


def add_upper_abdomen(model, rng: np.random.Generator, plan: TorsoPlan) -> None:
    """Pancreas (before the stomach, which lies in front of it), stomach, spleen, liver and
    gallbladder, below the diaphragm; sets ``plan.st_pts`` (stomach centreline) and
    ``model.organs`` (spleen, liver); landmarks ``stomach_centre``, ``spleen_centre``,
    ``liver_centre``.

    Args:
        model: the phantom being built.
        rng: its random generator.
        plan: the torso plan (after the diaphragm: ``z_dR``, ``z_dL``, ``diaph``, ``below``).
    """
    U = rng.uniform
    H = plan.H
    vz, vt = plan.vz, plan.vt
    cav_back, cav_front, cav_hw = plan.cav_back, plan.cav_front, plan.cav_hw
    cyc, depth, spine_x, spine_y = plan.cyc, plan.depth, plan.spine_x, plan.spine_y
    z_dR, z_dL, diaph, below = plan.z_dR, plan.z_dL, plan.diaph, plan.below

    # ---- pancreas (before the stomach, which lies in front of it)
    zp = 0.5 * (vz['L1'] + vz['L2'])
    ay1 = vt['L1']['ay']
    pan = [np.array([-0.3 * cav_hw(zp), spine_y(zp) - ay1 - 52, zp - 18]),
           np.array([spine_x(zp) - 4, spine_y(zp) - ay1 - 42, zp]),
           np.array([spine_x(zp) + 38, spine_y(zp) - ay1 - 30, zp + 6]),
           np.array([0.55 * cav_hw(zp), spine_y(zp) - 20, zp + 16])]
    model.add('pancreas', Tube(*catmull_rom(pan, np.array([15, 12, 11, 9]) * U(0.85, 1.15),
                                            2)), allow_only('visceral_fat'))

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
    plan.st_pts = st_pts
    st_r = np.array([36, 32, 23, 13]) * ks
    model.add('stomach', Tube(*catmull_rom(st_pts, st_r, 3), clips=[below]),
              allow_only('visceral_fat'))
    model.landmarks_t['stomach_centre'] = st_pts[1]

    ksp = U(0.8, 1.2)
    sp_c = np.array([0.75 * hw_a, cav_back(z_dL - 44) - 0.24 * depth(z_dL - 44), z_dL - 44])
    spleen = Ellipsoid(sp_c, np.array([22.0, 48.0, 52.0]) * ksp, rot_z(35), clips=[below])
    model.add('spleen', spleen, allow_only('visceral_fat'))
    model.organs['spleen'] = spleen
    model.landmarks_t['spleen_centre'] = sp_c

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
    model.add('liver', liver, allow_only('visceral_fat'))
    model.organs['liver'] = liver
    xl = -0.45 * hw_l
    yl = cyc(z_liv) - 0.06 * dep_l
    model.landmarks_t['liver_centre'] = np.array(
        [xl, yl, 0.5 * (liver_bottom(xl) + diaph(xl, yl))])
    gb_x = -0.22 * hw_l
    gb_c = np.array([gb_x, cav_front(z_liv) + 0.24 * dep_l, liver_bottom(gb_x) + 12])
    model.add('gallbladder', Ellipsoid(gb_c, np.array([14.0, 14.0, 32.0]) * U(0.8, 1.2),
                                       frame_from_axis([0.3, -0.4, 1.0])),
              allow_only('liver', 'visceral_fat'))


def add_kidneys(model, rng: np.random.Generator, plan: TorsoPlan) -> None:
    """Left and right kidneys (the right one lower) beside the upper lumbar spine;
    landmarks ``kidney_<side>_centre`` / ``_upper_pole`` / ``_lower_pole``.

    Args:
        model: the phantom being built.
        rng: its random generator.
        plan: the torso plan.
    """
    U = rng.uniform
    H, W = plan.H, plan.W
    vz, spine_x, spine_y = plan.vz, plan.spine_x, plan.spine_y
    z_kl = vz['L1'] - 10 * H + U(-8, 8)
    z_kr = z_kl - U(8, 25)
    for s, side, zk_ in ((1, 'left', z_kl), (-1, 'right', z_kr)):
        kk = U(0.88, 1.12)
        c = np.array([spine_x(zk_) + s * 56 * W, spine_y(zk_) + 6, zk_])
        axes = np.array([27.0, 22.0, 55.0]) * kk
        Rk = frame_from_axis([-s * 0.3, 0.18, 1.0], ref=[1.0, -s * 0.5, 0.0])
        kid = Ellipsoid(c, axes, Rk)
        model.add(f'kidney_{side}', kid,
                  allow_only('visceral_fat', 'liver', 'spleen', 'stomach', 'pancreas',
                             'lung_left', 'lung_right', f'psoas_{side}', 'muscle'))
        model.organs[f'kidney_{side}'] = kid
        model.landmarks_t[f'kidney_{side}_centre'] = c
        model.landmarks_t[f'kidney_{side}_upper_pole'] = c + Rk[:, 2] * 0.78 * axes[2]
        model.landmarks_t[f'kidney_{side}_lower_pole'] = c - Rk[:, 2] * 0.78 * axes[2]


def add_lower_abdomen(model, rng: np.random.Generator, plan: TorsoPlan) -> None:
    """Small bowel region, colon (ascending, transverse, descending, sigmoid, rectum) and
    bladder; landmark ``bladder_centre``.

    Args:
        model: the phantom being built.
        rng: its random generator.
        plan: the torso plan (after the pelvis: ``z_sym``).
    """
    U = rng.uniform
    H = plan.H
    vz, z_s1, z_fh, z_sym = plan.vz, plan.z_s1, plan.z_fh, plan.z_sym
    cav_front, cav_hw, cyc, depth = plan.cav_front, plan.cav_hw, plan.cyc, plan.depth
    spine_y = plan.spine_y

    # ---- small bowel region, colon, bladder
    z_b4 = vz['L4']
    model.add('small_bowel', Ellipsoid(
        np.array([0.0, cav_front(z_b4) + 0.4 * depth(z_b4), z_b4 + 15]),
        np.array([0.85 * cav_hw(z_b4), 0.42 * depth(z_b4), 120.0 * H])),
        allow_only('visceral_fat'))
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
    model.add('colon', Tube(*catmull_rom(colon, col_r, 3)), allow_only('visceral_fat',
                                                                        'small_bowel'))
    kb = U(0.65, 1.3)
    bl_ax = np.array([42.0, 34.0, 36.0]) * kb
    bl_c = np.array([0.0, cav_front(z_sym + 30) + bl_ax[1] + 6, z_sym + 12 + bl_ax[2]])
    model.add('bladder', Ellipsoid(bl_c, bl_ax), allow_only('visceral_fat', 'small_bowel',
                                                            'colon'))
    model.landmarks_t['bladder_centre'] = bl_c
