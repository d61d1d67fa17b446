"""Skeleton builders of the phantom: spine (with paraspinal muscles, spinal canal, discs),
pelvis and femurs, and the chest wall (sternum, ribs, costal cartilage, clavicles,
scapulae). Each is a function of ``(model, rng, plan)`` (see :mod:`.torso`)."""
from __future__ import annotations

import numpy as np

from .anatomy import VERTEBRAE
from .paint_rules import NOT_OUTSIDE, SOFT_BODY, allow_only
from .shapes import Ellipsoid, Tube, catmull_rom, frame_from_axis, rot_z
from .torso import TorsoPlan

__all__ = ['add_spine', 'add_pelvis', 'add_chest_wall']


def add_spine(model, rng: np.random.Generator, plan: TorsoPlan) -> None:
    """Vertebra frames (``plan.vt``), paraspinal muscles, spinal canal, intervertebral discs,
    vertebral bodies with posterior elements; landmarks ``vertebral_body_<T1..L5>``.

    Args:
        model: the :class:`~.phantom.PhantomModel` being built.
        rng: its random generator.
        plan: the torso plan.
    """
    U = rng.uniform
    W, D = plan.W, plan.D
    heights, discs, vz, z_s1 = plan.heights, plan.discs, plan.vz, plan.z_s1
    spine_y, spine_pt, tangent, vloc = plan.spine_y, plan.spine_pt, plan.tangent, plan.vloc

    # ---- vertebrae geometry (needed by many structures)
    vt = plan.vt
    for i, v in enumerate(VERTEBRAE):
        f = i / 16.0
        ax = (13.0 + 11.0 * f**1.3) * W**0.5 * U(0.95, 1.05)
        ay = (10.0 + 7.5 * f) * D**0.5 * U(0.95, 1.05)
        c = spine_pt(vz[v])
        R = frame_from_axis(tangent(vz[v]))
        vt[v] = dict(c=c, R=R, ax=ax, ay=ay, az=heights[i] / 2, lumbar=v.startswith('L'))

    # paraspinal muscles
    for s in (-1, 1):
        pts = [vloc(v, s * (vt[v]['ax'] + 14), vt[v]['ay'] + 30, 0) for v in VERTEBRAE]
        pts.append(np.array([s * 38.0, spine_y(z_s1 - 40) + 25, z_s1 - 40]))
        rad = [16 + 12 * (i / 16.0)**1.5 for i in range(17)] + [22]
        model.add('muscle', Tube(*catmull_rom(pts, rad, 2)),
                  allow_only('visceral_fat', 'muscle'))

    # spinal canal
    canal = [vloc(v, 0, vt[v]['ay'] + 11, 0) for v in VERTEBRAE]
    canal = [canal[0] + np.array([0, 0, 40.0])] + canal + \
        [np.array([0.0, spine_y(z_s1) + 25, z_s1 - 25])]
    model.add('spinal_canal', Tube(canal, 7.5), NOT_OUTSIDE)

    # intervertebral discs (between consecutive bodies and L5/S1)
    for i in range(17):
        v = VERTEBRAE[i]
        d = vt[v]
        z_bot = d['c'][2] - d['az']
        zd = z_bot - discs[i] / 2
        c = spine_pt(zd)
        model.add('intervertebral_disc',
                  Ellipsoid(c, (d['ax'], d['ay'], discs[i] / 2 + 1.5), frame_from_axis(
                      tangent(zd)), exps=(2.4, 6.0)), NOT_OUTSIDE)

    # vertebral bodies and posterior elements
    for v in VERTEBRAE:
        d = vt[v]
        name = f'vertebra_{v}'
        ax, ay = d['ax'], d['ay']
        model.add(name, Ellipsoid(d['c'], (ax, ay, d['az']), d['R'], exps=(2.4, 8.0)),
                  NOT_OUTSIDE)
        px = max(0.55 * ax, 11.5)
        r = 5.5 if d['lumbar'] else 4.2
        sp_len, sp_drop = (26.0, 4.0) if d['lumbar'] else (28.0, 20.0)
        tp_len, tp_y = (22.0, 8.0) if d['lumbar'] else (15.0, 14.0)
        base = vloc(v, 0, ay + 24, -1)
        for s in (-1, 1):
            ring = [vloc(v, s * px, 0.8 * ay, 0), vloc(v, s * px, ay + 17, -1), base]
            model.add(name, Tube(ring, r), NOT_OUTSIDE)
            model.add(name, Tube([vloc(v, s * px, ay + tp_y - 4, 0),
                                  vloc(v, s * (ax + tp_len), ay + tp_y, 0)], [r, r * 0.8]),
                      NOT_OUTSIDE)
        model.add(name, Tube([base, vloc(v, 0, ay + 24 + sp_len, -sp_drop)], [r, r * 0.9]),
                  NOT_OUTSIDE)
        model.landmarks_t[f'vertebral_body_{v}'] = d['c'].copy()


def add_pelvis(model, rng: np.random.Generator, plan: TorsoPlan) -> None:
    """Sacrum, hip bones (iliac wing, acetabular roof, pubic and ischial rami) and femurs;
    sets ``plan.z_sym`` (pubic symphysis); landmarks ``sacrum_centre``,
    ``femoral_head_<side>``.

    Args:
        model: the phantom being built.
        rng: its random generator.
        plan: the torso plan (after :func:`add_spine`).
    """
    U = rng.uniform
    H, W, D = plan.H, plan.W, plan.D
    vz, z_s1, z_fh = plan.vz, plan.z_s1, plan.z_fh
    cav_back, cav_front = plan.cav_back, plan.cav_front
    spine_x, spine_y = plan.spine_x, plan.spine_y

    # ---- sacrum (tapered, tilted) and pelvis
    s1 = np.array([spine_x(z_s1), spine_y(z_s1), z_s1])
    tip = np.array([0.0, spine_y(z_s1) + 55 * D, z_s1 - 115 * H])
    sac_axis = s1 - tip
    sac_len = np.linalg.norm(sac_axis)
    sac_c = (s1 + tip) / 2 + np.array([0, 4.0, 0])
    sacrum = Ellipsoid(sac_c, (34 * W, 15 * D, sac_len / 2), frame_from_axis(sac_axis),
                       taper=0.55, exps=(2.2, 3.0))
    model.add('sacrum', sacrum, NOT_OUTSIDE)
    model.landmarks_t['sacrum_centre'] = sac_c + frame_from_axis(sac_axis) @ np.array(
        [0, 0, 0.2 * sac_len / 2])

    y_fh = 0.5 * (cav_back(z_fh) + cav_front(z_fh)) + U(-5, 8)
    r_fh = 23.0 * W * U(0.92, 1.08)
    z_crest = vz['L4'] + U(-12, 8)
    yc_pel = spine_y(z_s1) - 30 * D
    pel_ax = np.array([128 * W * U(0.95, 1.05), 72 * D, 1.35 * (z_crest - z_fh)])
    z_sym = z_fh - 18 * H
    plan.z_sym = z_sym
    for s, side in ((1, 'left'), (-1, 'right')):
        fh = np.array([s * 88 * W, y_fh, z_fh])
        hip = f'hip_{side}'
        clips = [
            (lambda x, y, z, s=s: s * x > 38.0),
            (lambda x, y, z, z0=z_fh + 8, z1=z_crest: (z > z0) & (z < z1)),
            (lambda x, y, z, y0=yc_pel - 0.55 * pel_ax[1]: y > y0),
        ]
        model.add(hip, Ellipsoid(np.array([0.0, yc_pel, z_crest]), pel_ax, shell=7.0,
                                 clips=clips), NOT_OUTSIDE)
        # acetabular roof: a shell around the femoral head, superior-medial half
        model.add(hip, Ellipsoid(fh, [r_fh + 9] * 3, shell=8.0, clips=[
            (lambda x, y, z, z0=z_fh - 6: z > z0),
            (lambda x, y, z, s=s, x0=fh[0]: s * x < s * x0 + 6)]), NOT_OUTSIDE)
        sym = np.array([s * 6.0, cav_front(z_sym) + 14, z_sym])
        model.add(hip, Tube([fh + np.array([-s * 0.7 * r_fh, -18, 6]), sym], [10, 8]),
                  NOT_OUTSIDE)
        it = np.array([s * 55 * W, y_fh + 32, 10.0])
        model.add(hip, Tube([sym + np.array([0, 4, -12]), it,
                             fh + np.array([-s * 6, 22, -14])], [7, 11, 12]), NOT_OUTSIDE)
        # femur: head, neck, shaft
        fem = f'femur_{side}'
        gt = np.array([s * (88 + 44) * W, y_fh + 8, z_fh - 22])
        model.add(fem, Ellipsoid(fh, [r_fh] * 3), NOT_OUTSIDE)
        model.add(fem, Tube([fh, gt], [15, 16]), NOT_OUTSIDE)
        model.add(fem, Tube([gt + np.array([-s * 6, 0, -10]),
                             np.array([s * 112 * W, y_fh + 2, z_fh - 260])], [15, 13]),
                  NOT_OUTSIDE)
        model.landmarks_t[f'femoral_head_{side}'] = fh


def add_chest_wall(model, rng: np.random.Generator, plan: TorsoPlan) -> None:
    """Sternum, ribs, costal cartilage, clavicles and scapulae; sets ``plan.z_st_top`` /
    ``plan.z_st_bot`` (sternum ends); landmark ``sternum_centre``.

    Args:
        model: the phantom being built.
        rng: its random generator.
        plan: the torso plan (after :func:`add_spine`).
    """
    U = rng.uniform
    H = plan.H
    vz, vt, vloc = plan.vz, plan.vt, plan.vloc
    cav_back, cav_front, cav_hw, cyc = plan.cav_back, plan.cav_front, plan.cav_hw, plan.cyc

    # ---- sternum, ribs, costal cartilage, clavicles, scapulae
    z_st_top = vz['T2'] + U(-6, 8)
    z_st_bot = vz['T9'] + U(-12, 10)
    plan.z_st_top, plan.z_st_bot = z_st_top, z_st_bot
    st_top = np.array([0.0, cav_front(z_st_top) - 5, z_st_top])
    st_bot = np.array([0.0, cav_front(z_st_bot) - 6, z_st_bot])
    st_c = (st_top + st_bot) / 2
    st_R = frame_from_axis(st_top - st_bot)
    st_len = np.linalg.norm(st_top - st_bot)
    model.add('sternum', Ellipsoid(st_c, (15.0, 7.0, st_len / 2), st_R, taper=0.25,
                                   exps=(2.5, 4.0)), NOT_OUTSIDE)
    model.landmarks_t['sternum_centre'] = st_c

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
            model.add(f'ribs_{side}', Tube(*catmull_rom(pts, np.full(len(pts), 4.6), 2)),
                      SOFT_BODY)
            end = pts[-1]
            if i < 7:
                zt = z_st_top - 10 - i * (z_st_top - z_st_bot - 15) / 6.5
                tgt = np.array([s * 13.0, cav_front(zt) - 4, zt])
                model.add('costal_cartilage', Tube([end, tgt], [4.4, 4.0]), SOFT_BODY)
                cart_ends[(s, i)] = (end + tgt) / 2
            elif i < 10:
                tgt = cart_ends[(s, i - 1)]
                model.add('costal_cartilage', Tube([end, tgt], [4.2, 3.8]), SOFT_BODY)
                cart_ends[(s, i)] = (end + tgt) / 2
        # clavicle
        zc1 = z_st_top + 6
        hw1 = cav_hw(vz['T1'])
        clav = [np.array([s * 16.0, st_top[1] - 3, zc1]),
                np.array([s * 0.5 * hw1, cav_front(vz['T1']) - 2, zc1 + 14]),
                np.array([s * 0.95 * hw1, cyc(vz['T1']) + 6, zc1 + 20])]
        model.add(f'clavicle_{side}', Tube(*catmull_rom(clav, [7, 7, 6.5], 3)), SOFT_BODY)
        # scapula: a thin plate behind the posterior ribs
        zsc = vz['T5']
        sc_c = np.array([s * 0.6 * cav_hw(zsc), cav_back(zsc) + 6, zsc])
        model.add(f'scapula_{side}', Ellipsoid(sc_c, (42.0, 5.0, 62.0), rot_z(-s * 15),
                                                taper=0.35, exps=(2.0, 2.6)), SOFT_BODY)
