"""Thoracic builders of the phantom: diaphragm, lungs, heart, and the mediastinum (airway,
aorta with arch and iliac arteries, inferior vena cava, esophagus, trachea). Each is a
function of ``(model, rng, plan)`` (see :mod:`.torso`)."""
from __future__ import annotations

import numpy as np

from .paint_rules import AIRWAY, BONES, NOT_BONE, allow_all_but, allow_only
from .shapes import Ellipsoid, Tube, catmull_rom, frame_from_axis
from .torso import TorsoPlan

__all__ = ['add_diaphragm', 'add_lungs', 'add_heart', 'add_mediastinum']


def add_diaphragm(model, rng: np.random.Generator, plan: TorsoPlan) -> None:
    """The diaphragm: two domes (the right one higher) as a height function ``diaph(x, y)``
    (template z). Paints nothing; sets ``plan.z_dR``, ``plan.z_dL`` (dome tops),
    ``plan.diaph`` (also ``model.diaph``) and the clips ``plan.above`` / ``plan.below``.

    Args:
        model: the :class:`~.phantom.PhantomModel` being built.
        rng: its random generator.
        plan: the torso plan.
    """
    U = rng.uniform
    z_dR = plan.vz['T10'] + U(-12, 20) * plan.H
    z_dL = z_dR - U(8, 25)
    hw_d = plan.cav_hw(z_dR)
    dep_d = plan.depth(z_dR)
    yd = plan.cyc(z_dR) + 8
    x_r, x_l, wdome = -0.45 * hw_d, 0.45 * hw_d, 0.6 * hw_d

    def diaph(x, y):
        ny = (y - yd) / (0.5 * dep_d)
        ydrop = np.where(ny > 0, 70.0, 35.0) * ny * ny
        r_ = z_dR - 48.0 * ((x - x_r) / wdome)**2 - ydrop
        l_ = z_dL - 48.0 * ((x - x_l) / wdome)**2 - ydrop
        return np.maximum(r_, l_)

    model.diaph = diaph
    plan.z_dR, plan.z_dL, plan.diaph = z_dR, z_dL, diaph
    plan.below = lambda x, y, z: z < diaph(x, y) - 2.0  # noqa: E731
    plan.above = lambda x, y, z: z > diaph(x, y)  # noqa: E731


def add_lungs(model, rng: np.random.Generator, plan: TorsoPlan) -> None:
    """Left and right lungs above the diaphragm; ``model.organs`` (lungs); landmarks
    ``lung_apex_<side>``.

    Args:
        model: the phantom being built.
        rng: its random generator.
        plan: the torso plan (after :func:`add_diaphragm`).
    """
    U = rng.uniform
    H, vz, cyc, cav_hw, depth = plan.H, plan.vz, plan.cyc, plan.cav_hw, plan.depth
    z_dR, z_dL, above = plan.z_dR, plan.z_dL, plan.above
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
        model.add(f'lung_{side}', lung, allow_only('visceral_fat'))
        model.organs[f'lung_{side}'] = lung
        model.landmarks_t[f'lung_apex_{side}'] = ctr + Rl[:, 2] * (c_len - 12.0)


def add_heart(model, rng: np.random.Generator, plan: TorsoPlan) -> None:
    """The heart above the left dome of the diaphragm; sets ``plan.h_c`` (centre),
    ``plan.Rh`` (frame, local z towards the apex), ``plan.h_ax`` (semi-axes); landmark
    ``heart_centre``.

    Args:
        model: the phantom being built.
        rng: its random generator.
        plan: the torso plan (after :func:`add_diaphragm`).
    """
    U = rng.uniform
    cav_hw, cav_front, depth = plan.cav_hw, plan.cav_front, plan.depth
    kh = U(0.88, 1.12)
    z_h = plan.z_dL + 32 * plan.H
    h_c = np.array([0.18 * cav_hw(z_h), cav_front(z_h) + 0.42 * depth(z_h), z_h])
    h_v = np.array([0.65, -0.45, -0.55])
    Rh = frame_from_axis(h_v, ref=[0.0, 0.0, 1.0])
    # local z = long axis (towards the apex)
    h_ax = np.array([46.0, 42.0, 62.0]) * kh
    heart = Ellipsoid(h_c, h_ax, Rh, clips=[plan.above])
    model.add('heart', heart, allow_only('visceral_fat', 'lung_left', 'lung_right'))
    model.landmarks_t['heart_centre'] = h_c
    plan.h_c, plan.Rh, plan.h_ax = h_c, Rh, h_ax


def add_mediastinum(model, rng: np.random.Generator, plan: TorsoPlan) -> None:
    """Bronchi (first, so that the trachea owns the carina), aorta with its arch and the
    iliac arteries, inferior vena cava, esophagus and trachea; landmarks
    ``aortic_arch_top``, ``aortic_bifurcation``, ``carina``; sets ``plan.z_car``.

    Args:
        model: the phantom being built.
        rng: its random generator.
        plan: the torso plan (after :func:`add_heart` and the stomach: ``st_pts``).
    """
    U = rng.uniform
    D = plan.D
    vz, vt, z_s1, z_fh, z_top = plan.vz, plan.vt, plan.z_s1, plan.z_fh, plan.z_top
    cav_front, cav_hw, cyc = plan.cav_front, plan.cav_hw, plan.cyc
    spine_x, spine_y = plan.spine_x, plan.spine_y
    z_dR, z_dL, st_pts = plan.z_dR, plan.z_dL, plan.st_pts
    h_c, Rh, h_ax = plan.h_c, plan.Rh, plan.h_ax

    # ---- airway (bronchi first so that the trachea owns the carina)
    z_car = vz['T5'] + U(-6, 8)

    def y_tr(z):
        return spine_y(z) - 36.0 * D**0.5

    carina = np.array([2.0, y_tr(z_car), z_car])
    r_tr = 8.5 * U(0.9, 1.1)
    for s, side, dz, dx in ((1, 'left', 48, 62), (-1, 'right', 42, 52)):
        br = [carina, carina + np.array([s * dx * 0.5, 6, -dz * 0.45]),
              carina + np.array([s * dx, 14, -dz])]
        model.add(f'bronchus_{side}', Tube(br, [r_tr * 0.75, r_tr * 0.65, r_tr * 0.5]),
                  allow_only('visceral_fat', 'lung_left', 'lung_right'))
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
    model.add('aorta', Tube(ao_p, ao_rr), NOT_BONE & ~allow_only('heart'))
    arch_zone = np.arange(len(ao_p)) <= 4 * 3
    top_i = int(np.argmax(np.where(arch_zone, ao_p[:, 2], -np.inf)))
    model.landmarks_t['aortic_arch_top'] = ao_p[top_i]
    model.landmarks_t['aortic_bifurcation'] = bif
    for s in (1, -1):
        il = [bif, np.array([s * 36.0, spine_y(vz['L5']) - 38, z_s1 - 12]),
              np.array([s * 0.55 * cav_hw(z_fh), cav_front(z_fh) + 40, z_fh + 35]),
              np.array([s * 0.6 * cav_hw(z_fh), cav_front(z_fh) + 30, z_fh - 10])]
        model.add('aorta', Tube(*catmull_rom(il, [7.5, 7, 6, 5.5], 2)), NOT_BONE)

    ivc = [np.array([spine_x(vz['L5']) - 22, spine_y(vz['L5']) - 28, vz['L5']]),
           np.array([-24.0, spine_y(vz['L3']) - vt['L3']['ay'] - 12, vz['L3']]),
           np.array([-26.0, spine_y(vz['L1']) - vt['L1']['ay'] - 16, vz['L1']]),
           np.array([-28.0, spine_y(z_dR - 40) - 36, z_dR - 40]),
           h_c + np.array([-30.0, 18.0, -22.0])]
    model.add('inferior_vena_cava', Tube(*catmull_rom(ivc, 11.0 * U(0.85, 1.15), 2)),
              allow_all_but('background', 'table', *BONES, *AIRWAY, 'aorta', 'kidney_left',
                            'kidney_right'))
    eso = [np.array([3.0, y_tr(z_top) + 14, z_top + 5]),
           np.array([4.0, y_tr(z_car) + 17, z_car]),
           np.array([10.0, spine_y(vz['T9']) - vt['T9']['ay'] - 24, vz['T9']]),
           np.array([22.0, cyc(z_dL - 10) + 10, z_dL - 16]), st_pts[0]]
    model.add('esophagus', Tube(*catmull_rom(eso, 7.5, 2)),
              allow_only('visceral_fat', 'lung_left', 'lung_right', 'muscle'))
    model.add('trachea', Tube(trach, [r_tr * 1.05, r_tr, r_tr * 0.95]),
              allow_only('visceral_fat', 'lung_left', 'lung_right', 'muscle', 'esophagus',
                         'aorta', 'bronchus_left', 'bronchus_right'))
    model.landmarks_t['carina'] = carina
    plan.z_car = z_car
