"""Register a moving image to a fixed image from anatomical-embedding matches (UAE-M).

``mmanat-register`` (same as ``python tools/register.py``). Examples::

    mmanat-register --config configs/sam/uae_m.py --checkpoint K \\
        --moving mr.nii.gz --fixed ct.nii.gz --out-dir reg_mr_to_ct
    mmanat-register --checkpoint K --moving a.nrrd --fixed b.nrrd --out-dir out \\
        --no-deformable --grid-spacing 32 32 24 --score-threshold 0.6

A grid of points over the moving image's body (every 48/48/32 mm along x/y/z by default) is
matched into the fixed image; confident matches give a rigid (Kabsch) then a robust affine
transform, refined by a SimpleITK B-spline registration (Mattes mutual information) unless
--no-deformable. Written to --out-dir: ``transform.h5`` (fixed -> moving, ITK convention:
3D Slicer applies it to the moving volume to align it with the fixed one), ``affine.tfm``,
``warped_moving.nii.gz`` (the moving image on the fixed grid), ``landmarks.csv`` (matched
pairs in world LPS mm with score / kept / inlier flags), ``registration.json`` (``quality``:
ok / failed, with the inlier counts). A registration whose matches do not agree (fewer than
--min-inliers RANSAC inliers, or under --min-inlier-fraction of the kept matches) failed: a
warning says why, nothing is written and the exit code is 1 (--keep-failed writes it).
"""
import argparse
import os
import os.path as osp
import sys
from typing import Dict, Optional, Sequence

from .outputs import output_dir
from .runner import command


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """The options of ``mmanat-register``."""
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
    p.add_argument('--out-dir', required=True, type=output_dir, help='output folder')
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
    p.add_argument('--min-inliers', type=int, default=10,
                   help='a registration with fewer RANSAC rigid inliers (affine inliers with '
                   '--ransac-threshold 0) failed')
    p.add_argument('--min-inlier-fraction', type=float, default=0.25,
                   help='a registration whose inliers are a smaller fraction of the kept '
                   'matches failed')
    p.add_argument('--keep-failed', action='store_true',
                   help='write the outputs of a failed registration too (quality "failed" in '
                   'registration.json) and exit 0; by default a failed registration writes '
                   'nothing and exits 1')
    p.add_argument('--moving-modality', choices=['CT', 'MR'], default=None,
                   help='modality of the moving image when its file does not say')
    p.add_argument('--fixed-modality', choices=['CT', 'MR'], default=None,
                   help='modality of the fixed image when its file does not say')
    p.add_argument('--device', default=None, help='cpu, cuda, cuda:1 (default: GPU if any)')
    p.add_argument('--quiet', action='store_true', help='no progress lines')
    return p.parse_args(argv)


@command
def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry of ``mmanat-register``: parse, then :func:`register_files`."""
    args = parse_args(argv)
    paths = register_files(
        args.moving, args.fixed, args.out_dir, config=args.config,
        checkpoint=args.checkpoint, checkpoint_task=args.checkpoint_task,
        random_init=args.random_init, deformable=not args.no_deformable,
        grid_spacing=args.grid_spacing, score_threshold=args.score_threshold,
        ransac_threshold=args.ransac_threshold, cycle_tolerance=args.cycle_tolerance,
        bspline_preset=args.bspline_preset, moving_modality=args.moving_modality,
        fixed_modality=args.fixed_modality, device=args.device, quiet=args.quiet,
        min_inliers=args.min_inliers, min_inlier_fraction=args.min_inlier_fraction,
        keep_failed=args.keep_failed)
    return 0 if paths else 1


def registration_quality(info: dict, min_inliers: int = 10,
                         min_inlier_fraction: float = 0.25) -> dict:
    """Judge a landmark registration by the consensus of its matches.

    The rigid RANSAC fit (or, without RANSAC, the robust affine fit) keeps the matches that
    agree with one transform; when few of the confident matches agree, the matches are mostly
    wrong (e.g. unrelated anatomy, another body part) and the transform is unusable.

    Args:
        info: ``RegistrationResult.info`` (``n_kept``, ``n_ransac_inliers`` or
            ``n_inliers``).
        min_inliers: fewest agreeing matches of a usable registration.
        min_inlier_fraction: smallest agreeing fraction of the kept matches.

    Returns:
        ``dict(quality='ok' | 'failed', inliers, kept, inlier_fraction, reason)``.
    """
    kept = int(info.get('n_kept', 0))
    inliers = int(info.get('n_ransac_inliers', info.get('n_inliers', 0)))
    frac = inliers / kept if kept else 0.0
    what = 'RANSAC rigid inliers' if 'n_ransac_inliers' in info else 'affine inliers'
    reasons = []
    if inliers < min_inliers:
        reasons.append(f'{inliers} {what} < {min_inliers}')
    if frac < min_inlier_fraction:
        reasons.append(f'{inliers} of {kept} kept matches agree ({100 * frac:.0f}% < '
                       f'{100 * min_inlier_fraction:.0f}%)')
    return dict(quality='failed' if reasons else 'ok', inliers=inliers, kept=kept,
                inlier_fraction=round(frac, 4), reason='; '.join(reasons))


def register_files(moving_path: str, fixed_path: str, out_dir: str, *,
                   config: Optional[str] = None, checkpoint: Optional[str] = None,
                   checkpoint_task: str = 'ct_mr', random_init: bool = False,
                   deformable: bool = True,
                   grid_spacing: Sequence[float] = (48.0, 48.0, 32.0),
                   score_threshold: float = 0.5, ransac_threshold: float = 15.0,
                   cycle_tolerance: Optional[float] = None, bspline_preset: str = 'quick',
                   moving_modality: Optional[str] = None,
                   fixed_modality: Optional[str] = None, device: Optional[str] = None,
                   quiet: bool = False, min_inliers: int = 10,
                   min_inlier_fraction: float = 0.25,
                   keep_failed: bool = False) -> Dict[str, str]:
    """Register ``moving_path`` to ``fixed_path`` and write the results to ``out_dir``.

    Args:
        moving_path, fixed_path (str): the images (moving: e.g. the MR, fixed: the CT).
        out_dir (str): output folder (transform.h5, affine.tfm, warped_moving.nii.gz,
            landmarks.csv).
        config, checkpoint: the model (default: the shipped model of ``checkpoint_task``).
        checkpoint_task (str): 'ct_mr' (UAE-M) or 'sam'.
        random_init (bool): random weights of ``config`` (pipeline tests).
        deformable (bool): refine the landmark affine with a SimpleITK B-spline.
        grid_spacing (tuple[float]): grid step over the moving body, (x, y, z) mm.
        score_threshold (float): keep matches with a similarity above it (<= 1).
        ransac_threshold (float): RANSAC inlier distance (mm) of the rigid fit; 0: Huber
            fits on all kept matches.
        cycle_tolerance (float, optional): also require the back-match within this many mm.
        bspline_preset (str): 'quick' (4 mm) or 'default' (2 mm).
        moving_modality, fixed_modality (str, optional): 'CT' or 'MR' when files do not say.
        device (str, optional): torch device.
        quiet (bool): no progress lines.
        min_inliers, min_inlier_fraction: below either the registration failed
            (:func:`registration_quality`).
        keep_failed (bool): write the outputs of a failed registration too.

    Returns:
        dict[str, str]: output name -> written path (``registration.json`` holds the
        counts and the ``quality``); empty when the registration failed and nothing was
        written.
    """
    from mmanat.apis import init_model
    from mmanat.apis.registration import register_with_embeddings, save_registration
    from mmanat.fileio import read_volume
    from mmanat.utils.exceptions import InvalidInputError
    from mmanat.utils.model_zoo import resolve_checkpoint

    for path in (moving_path, fixed_path):
        if not osp.exists(path):
            raise InvalidInputError(f'{path}: file not found (working directory '
                                    f'{os.getcwd()}); check the path.')
    checkpoint = resolve_checkpoint(checkpoint, random_init, config,
                                    'ct_mr' if checkpoint_task == 'ct_mr' else 'sam',
                                    announce=not quiet)
    say = (lambda *a: None) if quiet else print
    say('loading the model ...')
    model = init_model(config, checkpoint, device=device, expect='3d-embedding',
                       user='tools/register.py')
    moving = read_volume(moving_path, modality=moving_modality)
    fixed = read_volume(fixed_path, modality=fixed_modality)
    res = register_with_embeddings(
        model, moving, fixed, grid_spacing_mm=grid_spacing,
        score_threshold=score_threshold,
        deformable='bspline' if deformable else 'none',
        cycle_tolerance_mm=cycle_tolerance, bspline_preset=bspline_preset,
        ransac_threshold_mm=ransac_threshold if ransac_threshold > 0 else None,
        progress=not quiet)
    i = res.info
    quality = registration_quality(i, min_inliers, min_inlier_fraction)
    failed = quality['quality'] == 'failed'
    if failed:
        print(f'warning: the registration failed: {quality["reason"]}; the matches do not '
              'agree on one transform (images of different anatomy, or a model that does '
              'not fit these modalities). ' + ('Writing it anyway (--keep-failed).'
                                               if keep_failed else 'Nothing written; '
                                               '--keep-failed writes it anyway.'),
              file=sys.stderr, flush=True)
        if not keep_failed:
            return {}
    paths = save_registration(res, out_dir)
    paths['registration'] = _write_report(out_dir, i, quality)
    ransac = (f'{i["n_ransac_inliers"]} RANSAC rigid inliers, ' if 'n_ransac_inliers' in i
              else '')
    say(f'{i["n_kept"]} of {i["n_grid"]} matches kept, {ransac}{i["n_inliers"]} affine inliers; '
        f'median residual rigid {i["rigid_residual_mm"]:.2f} mm, affine '
        f'{i["affine_residual_mm"]:.2f} mm; {i["total_s"]:.1f} s')
    if i.get('affine', 'fitted') != 'fitted':
        say(f'note: {i["affine"]}')
    for name, p in paths.items():
        say(f'  {name}: {p}')
    return paths


def _write_report(out_dir: str, info: dict, quality: dict) -> str:
    """``registration.json``: the quality verdict and the counts / residuals / timings."""
    import json

    import numpy as np

    from mmanat.fileio import atomic_path

    def plain(v):
        if isinstance(v, dict):
            return {str(k): plain(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        if isinstance(v, np.ndarray):
            return v.tolist()
        if isinstance(v, np.generic):
            return v.item()
        return v if isinstance(v, (str, int, float, bool, type(None))) else str(v)

    path = osp.abspath(osp.join(out_dir, 'registration.json'))
    with atomic_path(path) as tmp:
        with open(tmp, 'w', encoding='utf-8') as f:
            json.dump(dict(quality, info=plain(info)), f, indent=2)
            f.write('\n')
    return path
