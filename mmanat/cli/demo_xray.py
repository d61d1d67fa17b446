"""One-shot landmark detection on chest X-rays with the 2D SAM (``mmanat-demo-xray``, same as
``python tools/demo_xray.py``): the landmarks of a template radiograph are found in a target
radiograph by matching 2D SAM embeddings; a figure shows the template with its landmarks and
the target with the matches, the true positions and the errors in mm where known.

With no image arguments two synthetic subjects are rendered on the fly
(:func:`mmanat.datasets.synthetic_radiograph_dataset.render_synthetic_xray`: chest
radiographs projected from the synthetic torso generator, with projected landmarks), the
first as the template, the second as the target whose landmarks are the truth. The images,
the template landmarks and the matches are written next to the figure, so the same match can
be re-run with ``mmanat-match``. Points are world mm of the image plane; point files are
``.csv`` ``name,x,y`` or pixel ``name,column,row`` (docs/en/user_guides/xray_matching.md).
"""
from __future__ import annotations

import argparse
import os
import os.path as osp
import sys
import time
from typing import Dict, Optional, Sequence

import numpy as np

from ..utils.exceptions import InvalidInputError
from .match import SAM2D_TINY_CONFIG, read_query_points, shipped_checkpoint
from .outputs import output_dir
from .runner import checkout_root, command

DEFAULT_OUT_DIR = osp.join('work_dirs', 'demo_xray')
DESCRIPTION = ('Find the landmarks of a template chest X-ray in a target X-ray with the 2D SAM '
               '(two synthetic subjects by default); prints every match and the mean error, '
               'saves a figure.')


def build_parser() -> argparse.ArgumentParser:
    """Command-line options of ``mmanat-demo-xray``."""
    p = argparse.ArgumentParser(description=DESCRIPTION,
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('--checkpoint', default=None,
                   help='2D SAM checkpoint (.pth); default: checkpoints/sam2d_default.pth')
    p.add_argument('--config', default=None,
                   help='model config; default: the one stored in the checkpoint (with '
                   f'--random-init: {SAM2D_TINY_CONFIG})')
    p.add_argument('--random-init', action='store_true',
                   help='no checkpoint: random weights of --config (to try the pipeline; the '
                   'matches are meaningless)')
    p.add_argument('--template', default=None,
                   help='template radiograph (DICOM, PNG, 2D NRRD/MHA); default: synthetic '
                   'subject --seeds[0]')
    p.add_argument('--template-points', default=None,
                   help='its landmarks: .csv name,x,y (world mm) or name,column,row (pixels)')
    p.add_argument('--target', default=None,
                   help='target radiograph; default: synthetic subject --seeds[1]')
    p.add_argument('--target-points', default=None,
                   help='optional true landmarks of the target (same names), for the errors')
    p.add_argument('--seeds', type=int, nargs=2, default=(0, 1), metavar=('TEMPLATE', 'TARGET'),
                   help='synthetic subjects rendered when --template / --target are not '
                   'given')
    p.add_argument('--subject-spacing', type=float, default=4.0,
                   help='voxel size (mm) of the synthetic subjects (and their radiographs)')
    p.add_argument('--method', default='consensus',
                   choices=['consensus', 'reference', 'coarse_to_fine'],
                   help='matching method (mmanat.apis.match)')
    p.add_argument('--no-refine', action='store_true', help='no sub-pixel refinement')
    p.add_argument('--device', default=None, help='cpu, cuda, cuda:1 (default: GPU if any)')
    p.add_argument('--out-dir', default=DEFAULT_OUT_DIR, type=output_dir,
                   help='where the figure (demo_xray.png) and the point files go')
    return p


def synthetic_xray(seed: int, spacing: float = 4.0):
    """``(image, landmarks)`` of synthetic subject ``seed``: its chest radiograph as a 2D
    :class:`~mmanat.structures.MedicalImage` (modality XR, world mm = pixel index x pixel
    size) and the projected landmarks inside the image as a 2D :class:`PointSet` (world mm)."""
    from ..datasets.synthetic_radiograph_dataset import render_synthetic_xray
    from ..structures import MedicalImage, PointSet
    item = render_synthetic_xray(int(seed), spacing=float(spacing), img_size=None)
    image = MedicalImage(item['img'], spacing=item['spacing'], modality='XR',
                         path=f'synthetic_xray_subject{int(seed)}')
    ok = np.asarray(item['landmark_valid'], dtype=bool)
    xy = image.index_to_world(np.asarray(item['landmarks'], np.float64)[ok])
    names = [n for n, v in zip(item['landmark_names'], ok) if v]
    return image, PointSet(xy, names=names)


def _points_of(path: str, image, role: str):
    """World mm landmarks of ``image`` read from ``path`` (world or pixel .csv)."""
    from ..structures import PointSet
    pts, is_pixel = read_query_points(path, image.path or role, True)
    if is_pixel:
        pts = PointSet(image.index_to_world(pts.xyz), names=pts.names)
    return pts


def _resolve_model(checkpoint, config, random_init):
    if random_init:
        if config is None:
            config = osp.join(checkout_root(), SAM2D_TINY_CONFIG)
            if not osp.isfile(config):
                raise InvalidInputError(f'{config}: the tiny 2D SAM config is missing; pass '
                                        '--config with a 2D SAM config.')
        return None, config
    return checkpoint or shipped_checkpoint(True), config


def run_demo_xray(*, checkpoint: Optional[str] = None, config: Optional[str] = None,
                  random_init: bool = False, template: Optional[str] = None,
                  template_points: Optional[str] = None, target: Optional[str] = None,
                  target_points: Optional[str] = None, seeds: Sequence[int] = (0, 1),
                  subject_spacing: float = 4.0, method: str = 'consensus',
                  refine: bool = True, device: Optional[str] = None,
                  out_dir: str = DEFAULT_OUT_DIR) -> Dict[str, object]:
    """Run the demo (see the module docstring) and print its report.

    Args:
        checkpoint (str, optional): 2D SAM checkpoint (default: the shipped one).
        config (str, optional): model config (default: the checkpoint's; with
            ``random_init`` the tiny 2D SAM config).
        random_init (bool): random weights (pipeline test).
        template, template_points (str, optional): template radiograph and its landmarks
            (both or neither; default: synthetic subject ``seeds[0]``).
        target, target_points (str, optional): target radiograph and optionally its true
            landmarks (default: synthetic subject ``seeds[1]`` with its landmarks).
        seeds (tuple[int]): synthetic template and target subjects.
        subject_spacing (float): voxel size of the synthetic subjects (mm).
        method (str): 'consensus', 'reference' or 'coarse_to_fine'.
        refine (bool): sub-pixel refinement.
        device (str, optional): torch device.
        out_dir (str): folder of the figure and the point files.

    Returns:
        dict: ``query`` (PointSet, world mm), ``match`` (MatchResult, 2D), ``truth``
        (``(N, 2)`` world mm, NaN where unknown, or None), ``errors`` (mm or None),
        ``mean_error``, ``png``, ``files``, ``times``.
    """
    from ..apis import embed, init_model
    from ..apis.matching import Matcher
    from ..fileio import read_xray, write_image, write_points
    from ..structures import PointSet
    from ..visualization.xray_match_figure import plot_xray_matches

    if (template is None) != (template_points is None):
        raise InvalidInputError('give --template and --template-points together (or neither: '
                                'the synthetic template).')
    times: Dict[str, float] = {}
    t0 = time.perf_counter()
    checkpoint, config = _resolve_model(checkpoint, config, random_init)
    model = init_model(config, checkpoint, device=device, expect='2d-dense-embedding',
                       user='tools/demo_xray.py')
    times['model'] = time.perf_counter() - t0
    t0 = time.perf_counter()
    synthetic = {}
    if template is None:
        tpl_img, query = synthetic_xray(seeds[0], subject_spacing)
        synthetic['template'] = tpl_img
    else:
        tpl_img = read_xray(template)
        query = _points_of(template_points, tpl_img, 'template')
    truth_pts = None
    if target is None:
        tgt_img, truth_pts = synthetic_xray(seeds[1], subject_spacing)
        synthetic['target'] = tgt_img
    else:
        tgt_img = read_xray(target)
        if target_points is not None:
            truth_pts = _points_of(target_points, tgt_img, 'target')
    times['load'] = time.perf_counter() - t0

    t0 = time.perf_counter()
    maps_t, maps_g = embed(model, tpl_img), embed(model, tgt_img)
    times['embed'] = time.perf_counter() - t0
    t0 = time.perf_counter()
    cfg = dict(template_image=tpl_img) if method == 'consensus' else None
    res = Matcher(maps_t, maps_g).match(query, method=method, refine=refine,
                                        consensus_cfg=cfg)
    times['match'] = time.perf_counter() - t0

    truth = errors = None
    if truth_pts is not None:
        truth = np.full((len(query), 2), np.nan)
        for i, name in enumerate(query.names):
            if name in truth_pts.names:
                truth[i] = truth_pts[name]
        errors = np.linalg.norm(res.points - truth, axis=1)
    t0 = time.perf_counter()
    os.makedirs(out_dir, exist_ok=True)
    files = []
    for role, image in synthetic.items():  # the rendered images, for mmanat-match
        files.append(write_image(image.with_array(image.array.astype(np.float32)),
                                 osp.join(out_dir, f'{role}.nrrd')))
    files.append(write_points(query, osp.join(out_dir, 'template_landmarks.csv')))
    extra = dict(res.to_pointset(names=query.names).extra)
    if errors is not None:
        extra['error_mm'] = [float(v) for v in errors]
    files.append(write_points(PointSet(res.points, names=query.names, extra=extra),
                              osp.join(out_dir, 'matches.csv')))
    mean = float(np.nanmean(errors)) if errors is not None and np.any(np.isfinite(errors)) \
        else None
    title = (f'2D SAM one-shot landmarks ({res.method})'
             + (f': mean error {mean:.1f} mm' if mean is not None else '')
             + ('  [random weights]' if random_init else ''))
    png = plot_xray_matches(tpl_img, query.xyz, tgt_img, res.points,
                            osp.join(out_dir, 'demo_xray.png'), names=query.names,
                            truth=truth, scores=res.scores, title=title)
    times['figure'] = time.perf_counter() - t0

    out = sys.stdout
    ident = model.mmanat_identity
    print(f'model     {ident["config"]} ({ident.get("checkpoint") or "random init"}, sha256 '
          f'{str(ident.get("sha256"))[:12]}), device {maps_t.device}', file=out)
    if random_init:
        print('WARNING   random weights: the matches below are meaningless (pipeline test).',
              file=out)
    for role, img in (('template', tpl_img), ('target', tgt_img)):
        sp = ' x '.join(f'{v:.2f}' for v in img.spacing)
        print(f'{role:9s} {img.path}  ({" x ".join(map(str, img.shape))} rows x columns of '
              f'{sp} mm)', file=out)
    for i, name in enumerate(query.names):
        x, y = res.points[i]
        c, r = res.index[i]
        line = (f'  {name:>22s}  ({x:7.1f}, {y:7.1f}) mm  pixel ({c:6.1f}, {r:6.1f})  '
                f'score {res.scores[i]:.3f}')
        if errors is not None and np.isfinite(errors[i]):
            line += f'  error {errors[i]:5.1f} mm'
        print(line, file=out)
    if mean is not None:
        n = int(np.isfinite(errors).sum())
        print(f'mean error {mean:.1f} mm over {n} landmark(s) (median '
              f'{float(np.nanmedian(errors)):.1f} mm)', file=out)
    print('timing    ' + ' | '.join(f'{k} {v:.2f} s' for k, v in times.items()), file=out)
    print(f'figure    {png}', file=out)
    return dict(query=query, match=res, truth=truth, errors=errors, mean_error=mean, png=png,
                files=files, times=times)


@command
def main(argv: Optional[Sequence[str]] = None) -> int:
    """``mmanat-demo-xray`` (``tools/demo_xray.py``): 2D SAM, X-ray to X-ray."""
    args = build_parser().parse_args(argv)
    run_demo_xray(checkpoint=args.checkpoint, config=args.config,
                  random_init=args.random_init, template=args.template,
                  template_points=args.template_points, target=args.target,
                  target_points=args.target_points, seeds=tuple(args.seeds),
                  subject_spacing=args.subject_spacing, method=args.method,
                  refine=not args.no_refine, device=args.device, out_dir=args.out_dir)
    return 0
