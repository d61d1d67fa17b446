"""Figure of synthetic subjects: CT (coronal), MR (coronal) and X-ray, landmarks overlaid.

Example::

    python tools/analysis/plot_synthetic_subjects.py --out resources/synthetic_subjects.png

Rows are subjects (seeds ``--seed``, ``--seed + 1``, ...), drawn over the whole torso
(``z_range='full'``) at ``--spacing`` mm. The CT column uses a wide lung/soft-tissue window
(level -200 HU, width 1000 HU: black lungs, grey fat, organs, bright bone); the MR column
cycles through the T1, T2 and random presets; the X-ray column is the parallel AP projection
of the CT (table removed). Landmarks within 12 mm of the
coronal plane are drawn as filled dots, the others as rings (their projection).
"""
import argparse
import os
import os.path as osp

import numpy as np



def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--out', default='resources/synthetic_subjects.png', help='output PNG')
    p.add_argument('--seed', type=int, default=0, help='seed of the first subject')
    p.add_argument('--num', type=int, default=3, help='number of subjects (rows)')
    p.add_argument('--spacing', type=float, default=2.0, help='voxel size in mm')
    p.add_argument('--dpi', type=int, default=80)
    return p.parse_args(argv)


def coronal(image, y_world):
    """Coronal slice (rows = superior at the top, columns = world x) at world ``y``, with the
    extent ``(x_min, x_max, z_min, z_max)`` in mm for ``imshow``."""
    j = int(round(image.world_to_index([[image.origin[0], y_world, image.origin[2]]])[0, 1]))
    j = int(np.clip(j, 0, image.shape[1] - 1))
    sl = image.array[::-1, j, :]
    (x0, _, z0), (x1, _, z1) = image.world_bounds()
    half = image.spacing / 2
    extent = (x0 - half[0], x1 + half[0], z0 - half[2], z1 + half[2])
    y_used = image.index_to_world([[0, j, 0]])[0, 1]
    return sl, extent, y_used


def main(argv=None):
    args = parse_args(argv)
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    from mmanat.datasets.synthetic import (STRUCTURE_BY_NAME, generate_subject, render_ct,
                                           render_mr, render_xray)
    from mmanat.fileio.atomic import atomic_path

    presets = ['T1', 'T2', 'random']
    subjects = []
    for k in range(args.num):
        subj = generate_subject(args.seed + k, spacing=args.spacing, z_range='full')
        ct = render_ct(subj)
        mr = render_mr(subj, preset=presets[k % 3])
        table = subj.labels.array == STRUCTURE_BY_NAME['table'].label
        xr, pts2d = render_xray(ct, subj.landmarks, exclude=table)
        subjects.append((subj, ct, mr, xr, pts2d))

    heights = [s[0].labels.shape[0] * s[0].labels.spacing[2] for s in subjects]
    width = subjects[0][0].labels.shape[2] * subjects[0][0].labels.spacing[0]
    panel_w = 3.4
    fig_h = sum(panel_w * h / width for h in heights) + 0.45 * args.num
    fig, axes = plt.subplots(args.num, 3, figsize=(3 * panel_w, fig_h), squeeze=False,
                             gridspec_kw=dict(height_ratios=heights))
    for row, (subj, ct, mr, xr, pts2d) in enumerate(subjects):
        lm = subj.landmarks.xyz
        # coronal plane through the kidney centres (spine, kidneys, lungs, liver visible)
        y_plane = float(np.mean([subj.landmarks[n][1] for n in
                                 ('kidney_left_centre', 'kidney_right_centre',
                                  'heart_centre', 'liver_centre')]))
        near = np.abs(lm[:, 1] - y_plane) < 12.0
        ct_sl, extent, y_used = coronal(ct, y_plane)
        mr_sl, _, _ = coronal(mr, y_plane)
        ax = axes[row, 0]
        ax.imshow(ct_sl, cmap='gray', vmin=-700, vmax=300, extent=extent)
        ax.set_title(f'subject {args.seed + row}: CT coronal y={y_used:.0f} mm'
                     f'{" (contrast)" if ct.meta["contrast"] else ""}', fontsize=8)
        ax = axes[row, 1]
        lo, hi = np.percentile(mr_sl, [0.5, 99.5])
        ax.imshow(mr_sl, cmap='gray', vmin=lo, vmax=hi, extent=extent)
        ax.set_title(f'MR ({mr.meta["preset"]} preset), same grid', fontsize=8)
        for ax in axes[row, :2]:
            ax.scatter(lm[near, 0], lm[near, 2], s=9, c='#ff3b30', edgecolors='none')
            ax.scatter(lm[~near, 0], lm[~near, 2], s=9, facecolors='none',
                       edgecolors='#ffcc00', linewidths=0.6)
        ax = axes[row, 2]
        (c0, r0) = (0, 0)
        ncol, nrow = xr.size
        corner_a = xr.index_to_world([[c0 - 0.5, r0 - 0.5]])[0]
        corner_b = xr.index_to_world([[ncol - 0.5, nrow - 0.5]])[0]
        ax.imshow(xr.array, cmap='gray', vmin=0, vmax=1,
                  extent=(corner_a[0], corner_b[0], corner_b[1], corner_a[1]))
        ax.scatter(pts2d.xyz[:, 0], pts2d.xyz[:, 1], s=9, c='#00d0ff', edgecolors='none')
        ax.set_title('X-ray (parallel AP projection)', fontsize=8)
        for ax in axes[row]:
            ax.set_xticks([])
            ax.set_yticks([])
    fig.suptitle('mmanat synthetic torso phantoms: CT / MR / X-ray with landmarks', fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.985))
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    with atomic_path(args.out) as tmp:
        fig.savefig(tmp, dpi=args.dpi, metadata={'Software': None})
    plt.close(fig)
    print(f'wrote {args.out}')


if __name__ == '__main__':
    main()
