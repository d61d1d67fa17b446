"""Write synthetic torso subjects (CT, MR, X-ray, label maps, landmarks) to a folder.

``mmanat-make-synthetic`` (same as ``python tools/make_synthetic_data.py``). Example::

    python tools/make_synthetic_data.py --num 20 --out data/synthetic --seed 0 \
        --modalities ct mr xray --workers 2

Per subject ``DIR/subject_XXXX/``:

* ``labels.nii.gz``: int16 label map (structure table: ``mmanat.datasets.synthetic.anatomy``),
* ``landmarks.csv``: ``name,x,y,z,inside``: world LPS mm; ``inside`` 1 when the landmark lies
  in the volume's field of view, 0 when it lies outside (above the top slice, ...),
* ``lesions.csv``: ``id,x,y,z,radius_mm,organ`` (header only when there are none),
* ``ct.nii.gz`` (int16 HU), ``mr.nii.gz`` (int16, arbitrary units ~0..1000) when asked for,
* ``xray.nii.gz`` (float32 in [0, 1], 2D geometry: spacing (x, z) mm, origin = (x, z) of the
  top-left pixel, direction [[1, 0], [0, -1]]), ``xray.png`` (uint8, same pixels) and
  ``xray_landmarks.csv`` (``name,x,y,column,row,inside``: x, y in the radiograph's 2D world
  mm, i.e. world x and z; column/row: pixel indices; ``inside`` 1 when the landmark lies
  inside the image and its anatomy was in the projected volume, 0 otherwise, e.g. above the
  top row) when ``xray`` is asked for.

The ``inside`` flags come from :func:`mmanat.datasets.synthetic.landmarks_inside`; readers
get them as ``read_points(path).extra['inside']`` (floats 1.0 / 0.0).

``DIR/index.csv`` lists every subject and its files (paths relative to ``DIR``). Subject ``i``
uses seed ``--seed + i``: the output is identical for the same arguments whatever
``--workers`` is (the NIfTI/PNG writers store no time stamps).
"""
import argparse
import csv
import io
import os
import os.path as osp

import numpy as np

from .outputs import output_dir
from .runner import command

MODALITY_CHOICES = ('ct', 'mr', 'xray')
INDEX_COLUMNS = ['subject_id', 'seed', 'labels', 'landmarks', 'lesions', 'ct', 'mr', 'xray_png',
                 'xray_nii', 'xray_landmarks', 'shape_zyx', 'spacing_xyz', 'origin_xyz',
                 'contrast', 'mr_preset', 'num_lesions', 'landmarks_in_fov']


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description='Generate synthetic torso phantoms (CT/MR/X-ray + landmarks).')
    p.add_argument('--num', type=int, required=True, help='number of subjects')
    p.add_argument('--out', required=True, type=output_dir, help='output folder')
    p.add_argument('--seed', type=int, default=0, help='seed of the first subject')
    p.add_argument('--modalities', nargs='+', default=list(MODALITY_CHOICES),
                   choices=MODALITY_CHOICES, help='renderings to write')
    p.add_argument('--spacing', type=float, nargs='+', default=[2.0],
                   help='voxel size in mm: one value or three (x y z)')
    p.add_argument('--fov', type=float, nargs=3, default=None, metavar=('X', 'Y', 'Z'),
                   help='field of view in mm (default 352 288 320)')
    p.add_argument('--z-range', default='random', choices=('random', 'full'),
                   help="'random': a --fov z extent at a random height; 'full': whole torso")
    p.add_argument('--mr-preset', default='T1', choices=('T1', 'T2', 'random', 'mixed'),
                   help="MR contrast ('mixed': T1 or T2 at random per subject)")
    p.add_argument('--workers', type=int, default=1, help='parallel processes')
    return p.parse_args(argv)


def _check_args(args):
    from mmanat.utils.exceptions import InvalidInputError
    if args.num < 1:
        raise InvalidInputError(f'--num must be >= 1, got {args.num}.')
    if len(args.spacing) not in (1, 3) or min(args.spacing) <= 0:
        raise InvalidInputError(f'--spacing must be one or three positive numbers (mm), got '
                                f'{args.spacing}.')
    if args.workers < 1:
        raise InvalidInputError(f'--workers must be >= 1, got {args.workers}.')


def _write_text(path, text):
    from mmanat.fileio.atomic import atomic_path
    with atomic_path(path) as tmp:
        with open(tmp, 'w', encoding='utf-8', newline='') as f:
            f.write(text)


def _csv_text(header, rows):
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator='\n')
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


def make_subject(task):
    """Generate, render and write one subject; returns its ``index.csv`` row (a dict)."""
    index, seed, out_dir, opts = task
    from mmanat.datasets.synthetic import (STRUCTURE_BY_NAME, generate_subject,
                                           landmarks_inside, render_ct, render_mr,
                                           render_xray)
    from mmanat.fileio import write_image, write_points
    from mmanat.structures import PointSet

    sid = f'subject_{index:04d}'
    folder = osp.join(out_dir, sid)
    os.makedirs(folder, exist_ok=True)
    kwargs = dict(spacing=opts['spacing'], z_range=opts['z_range'], threads=1)
    if opts['fov'] is not None:
        kwargs['fov_mm'] = opts['fov']
    subj = generate_subject(seed, **kwargs)
    row = dict.fromkeys(INDEX_COLUMNS, '')
    row.update(subject_id=sid, seed=seed, labels=f'{sid}/labels.nii.gz',
               landmarks=f'{sid}/landmarks.csv', lesions=f'{sid}/lesions.csv',
               shape_zyx='x'.join(str(v) for v in subj.labels.shape),
               spacing_xyz=' '.join(f'{v:g}' for v in subj.labels.spacing),
               origin_xyz=' '.join(f'{v:g}' for v in subj.labels.origin),
               num_lesions=len(subj.lesions),
               landmarks_in_fov=int(np.sum(subj.landmarks.extra['in_fov'])))
    write_image(subj.labels, osp.join(folder, 'labels.nii.gz'))
    inside = landmarks_inside(subj.labels, subj.landmarks)
    write_points(PointSet(subj.landmarks.xyz, subj.landmarks.names,
                          extra={'inside': inside.astype(int).tolist()}),
                 osp.join(folder, 'landmarks.csv'))
    lesion_rows = [[k, *[repr(float(v)) for v in c], repr(float(r)),
                    subj.meta['lesion_organs'][k]] for k, (c, r) in enumerate(subj.lesions)]
    _write_text(osp.join(folder, 'lesions.csv'),
                _csv_text(['id', 'x', 'y', 'z', 'radius_mm', 'organ'], lesion_rows))

    mods = opts['modalities']
    ct = None
    if 'ct' in mods or 'xray' in mods:
        ct = render_ct(subj)
        row['contrast'] = int(ct.meta['contrast'])
    if 'ct' in mods:
        ct16 = ct.with_array(np.round(ct.array).astype(np.int16))
        write_image(ct16, osp.join(folder, 'ct.nii.gz'))
        row['ct'] = f'{sid}/ct.nii.gz'
    if 'mr' in mods:
        preset = opts['mr_preset']
        if preset == 'mixed':
            preset = ('T1', 'T2')[int(np.random.default_rng([seed, 77]).integers(2))]
        mr = render_mr(subj, preset=preset)
        # MR scanners store integers; 0..~1300 fits int16 and compresses far better
        write_image(mr.with_array(np.round(mr.array).astype(np.int16)),
                    osp.join(folder, 'mr.nii.gz'))
        row.update(mr=f'{sid}/mr.nii.gz', mr_preset=preset)
    if 'xray' in mods:
        table = subj.labels.array == STRUCTURE_BY_NAME['table'].label
        xr, pts2d = render_xray(ct, subj.landmarks, exclude=table)
        write_image(xr, osp.join(folder, 'xray.nii.gz'))
        png = xr.with_array(np.round(xr.array * 255.0).astype(np.uint8))
        write_image(png, osp.join(folder, 'xray.png'))
        colrow = xr.world_to_index(pts2d.xyz)
        inside2d = landmarks_inside(xr, pts2d)
        write_points(PointSet(pts2d.xyz, pts2d.names,
                              extra={'column': colrow[:, 0].tolist(),
                                     'row': colrow[:, 1].tolist(),
                                     'inside': inside2d.astype(int).tolist()}),
                     osp.join(folder, 'xray_landmarks.csv'))
        row.update(xray_png=f'{sid}/xray.png', xray_nii=f'{sid}/xray.nii.gz',
                   xray_landmarks=f'{sid}/xray_landmarks.csv')
    return row


@command
def main(argv=None) -> int:
    """Entry of ``mmanat-make-synthetic``: parse, then :func:`make_synthetic_data`."""
    args = parse_args(argv)
    make_synthetic_data(args)
    return 0


def make_synthetic_data(args) -> list:
    """Write the subjects of ``args`` (the options of :func:`parse_args`).

    Returns:
        list[dict]: the ``index.csv`` rows, sorted by subject id.

    Raises:
        InvalidInputError: a bad ``--num``, ``--spacing`` or ``--workers``.
    """
    _check_args(args)
    from tqdm import tqdm
    out_dir = osp.abspath(args.out)
    os.makedirs(out_dir, exist_ok=True)
    spacing = args.spacing[0] if len(args.spacing) == 1 else tuple(args.spacing)
    opts = dict(spacing=spacing, fov=args.fov, z_range=args.z_range,
                modalities=tuple(dict.fromkeys(args.modalities)), mr_preset=args.mr_preset)
    tasks = [(i, args.seed + i, out_dir, opts) for i in range(args.num)]
    rows = []
    bar = dict(total=len(tasks), desc='synthetic subjects', unit='subject')
    if args.workers > 1 and len(tasks) > 1:
        import multiprocessing as mp

        # import the heavy modules once; forked workers inherit them (spawn where fork is
        # unavailable). No thread is running yet, so forking is safe.
        import mmanat.datasets.synthetic  # noqa: F401
        import mmanat.fileio  # noqa: F401
        method = 'fork' if 'fork' in mp.get_all_start_methods() else 'spawn'
        with mp.get_context(method).Pool(min(args.workers, len(tasks))) as pool:
            for row in tqdm(pool.imap_unordered(make_subject, tasks), **bar):
                rows.append(row)
    else:
        for task in tqdm(tasks, **bar):
            rows.append(make_subject(task))
    rows.sort(key=lambda r: r['subject_id'])
    _write_text(osp.join(out_dir, 'index.csv'),
                _csv_text(INDEX_COLUMNS, [[r[c] for c in INDEX_COLUMNS] for r in rows]))
    print(f'wrote {len(rows)} subjects and index.csv to {out_dir}')
    return rows

