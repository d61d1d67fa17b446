#!/usr/bin/env python
"""Register a moving image to a fixed image from anatomical-embedding matches (UAE-M).

Examples::

    python tools/register.py --config configs/sam/uae_m.py --checkpoint K \\
        --moving mr.nii.gz --fixed ct.nii.gz --out-dir reg_mr_to_ct
    python tools/register.py --checkpoint K --moving a.nrrd --fixed b.nrrd --out-dir out \\
        --no-deformable --grid-spacing 32 32 24 --score-threshold 0.6

A grid of points over the moving image's body (every 48/48/32 mm along x/y/z by default) is
matched into the fixed image; confident matches give a rigid (Kabsch) then a robust affine
transform, refined by a SimpleITK B-spline registration (Mattes mutual information) unless
--no-deformable. Written to --out-dir: ``transform.h5`` (fixed -> moving, ITK convention:
3D Slicer applies it to the moving volume to align it with the fixed one), ``affine.tfm``,
``warped_moving.nii.gz`` (the moving image on the fixed grid), ``landmarks.csv`` (matched
pairs in world LPS mm with score / kept / inlier flags).
"""
import argparse
import os
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if ROOT not in sys.path:  # allow running from a checkout without installation
    sys.path.insert(0, ROOT)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--config', help='model config (default: the one stored in the checkpoint)')
    p.add_argument('--checkpoint', help='trained checkpoint (.pth); default: the shipped '
                   'model of --checkpoint-task')
    p.add_argument('--checkpoint-task', default='ct_mr', choices=['ct_mr', 'sam'],
                   help='shipped default when no --checkpoint: ct_mr = UAE-M '
                   '(checkpoints/uae_m_default.pth, any modality pair), sam = SAM (CT)')
    p.add_argument('--random-init', action='store_true',
                   help='random weights of --config instead of a checkpoint (pipeline tests)')
    p.add_argument('--moving', required=True, help='moving image (e.g. the MR)')
    p.add_argument('--fixed', required=True, help='fixed image (e.g. the CT)')
    p.add_argument('--out-dir', required=True, help='output folder')
    p.add_argument('--no-deformable', action='store_true',
                   help='stop after the landmark affine (no B-spline refinement)')
    p.add_argument('--grid-spacing', type=float, nargs=3, default=(48.0, 48.0, 32.0),
                   metavar=('X', 'Y', 'Z'), help='grid step over the moving body in mm')
    p.add_argument('--score-threshold', type=float, default=0.5,
                   help='keep matches with a similarity above it (<= 1)')
    p.add_argument('--ransac-threshold', type=float, default=15.0,
                   help='RANSAC inlier distance (mm) of the rigid fit; 0: Huber fits on all '
                   'kept matches instead (only for models whose matches are mostly right)')
    p.add_argument('--cycle-tolerance', type=float, default=None,
                   help='also require the back-match within this many mm of the grid point')
    p.add_argument('--bspline-preset', default='quick', choices=['quick', 'default'],
                   help='SimpleITK B-spline set-up (quick: 4 mm; default: 2 mm)')
    p.add_argument('--moving-modality', choices=['CT', 'MR'], default=None)
    p.add_argument('--fixed-modality', choices=['CT', 'MR'], default=None)
    p.add_argument('--device', default=None, help='cpu, cuda, cuda:1 (default: GPU if any)')
    p.add_argument('--quiet', action='store_true', help='no progress lines')
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    from mmanat.utils.exceptions import MMAnatError
    try:
        return _run(args)
    except MMAnatError as err:
        print(f'error: {err}', file=sys.stderr)
        return 2


def _run(args) -> int:
    from mmanat.apis import init_model
    from mmanat.apis.registration import register_with_embeddings, save_registration
    from mmanat.fileio import read_volume
    from mmanat.utils.exceptions import InvalidInputError

    for path in (args.moving, args.fixed):
        if not osp.exists(path):
            raise InvalidInputError(f'{path}: file not found (working directory '
                                    f'{os.getcwd()}).')
    from mmanat.apis.model_zoo import resolve_checkpoint
    checkpoint = resolve_checkpoint(args.checkpoint, args.random_init, args.config,
                                    'ct_mr' if args.checkpoint_task == 'ct_mr' else 'sam',
                                    announce=not args.quiet)
    say = (lambda *a: None) if args.quiet else print
    say('loading the model ...')
    model = init_model(args.config, checkpoint, device=args.device)
    moving = read_volume(args.moving, modality=args.moving_modality)
    fixed = read_volume(args.fixed, modality=args.fixed_modality)
    res = register_with_embeddings(
        model, moving, fixed, grid_spacing_mm=args.grid_spacing,
        score_threshold=args.score_threshold,
        deformable='none' if args.no_deformable else 'bspline',
        cycle_tolerance_mm=args.cycle_tolerance, bspline_preset=args.bspline_preset,
        ransac_threshold_mm=args.ransac_threshold if args.ransac_threshold > 0 else None,
        progress=not args.quiet)
    paths = save_registration(res, args.out_dir)
    i = res.info
    ransac = (f'{i["n_ransac_inliers"]} RANSAC rigid inliers, ' if 'n_ransac_inliers' in i
              else '')
    say(f'{i["n_kept"]} of {i["n_grid"]} matches kept, {ransac}{i["n_inliers"]} affine inliers; '
        f'median residual rigid {i["rigid_residual_mm"]:.2f} mm, affine '
        f'{i["affine_residual_mm"]:.2f} mm; {i["total_s"]:.1f} s')
    if i.get('affine', 'fitted') != 'fitted':
        say(f'note: {i["affine"]}')
    for name, p in paths.items():
        say(f'  {name}: {p}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
