"""The demos (``mmanat-demo``, ``mmanat-demo-semantic``, ``mmanat-demo-semantic-stable-points``,
``mmanat-demo-ct-mr``; same as ``python tools/demo*.py``): pick a point in a template scan,
find it in a target scan, print the match with the time of every stage, save a three-plane
PNG.

With no arguments the demos run on the sample data (``data/samples``, fetched by
``mmanat-fetch-data``): template ``ct/lung1.nrrd`` with its carina as the query, target
``ct/lung2.nrrd``, whose carina is known too (the rule-based landmarks of
:mod:`mmanat.evaluation.landmarks`, ``--landmark`` picks another), so the demo prints the
error in mm beside the match. ``demo_ct_mr``
matches a landmark of a synthetic subject's MR in the CT of the same subject (the MR moved
by a known rigid + smooth deformation, so the ground truth is known).
"""
from __future__ import annotations

import argparse
import os.path as osp
import sys
import time
from typing import Dict, Optional, Sequence

import numpy as np

from ..utils.exceptions import InvalidInputError
from ..utils.model_zoo import DEFAULT_CHECKPOINTS as DEFAULT_CHECKPOINT_FILES
from ..utils.model_zoo import default_checkpoint
from .outputs import output_file
from .runner import command

SAMPLES = osp.join('data', 'samples')
#: the rule-based landmarks of the sample CTs (mmanat.evaluation.landmarks.LANDMARK_RULES)
SAMPLE_LANDMARKS = ('carina', 'lung_apex_right', 'lung_apex_left', 'jugular_notch',
                    'clavicle_head_right', 'clavicle_head_left')
DEFAULT_TEMPLATE = osp.join(SAMPLES, 'ct', 'lung1.nrrd')
DEFAULT_TEMPLATE_LABEL = osp.join(SAMPLES, 'ct', 'lung1_label.nrrd')
DEFAULT_TARGET = osp.join(SAMPLES, 'ct', 'lung2.nrrd')
DEFAULT_OUT = osp.join('outputs', 'demo_match.png')
#: demo kind -> shipped default checkpoint (see :mod:`mmanat.utils.model_zoo`)
DEFAULT_CHECKPOINTS = {k: osp.join('checkpoints', DEFAULT_CHECKPOINT_FILES[k])
                       for k in ('sam', 'semantic', 'ct_mr')}
#: one-line description of each demo (its ``--help``)
DESCRIPTIONS = {
    'sam': 'Find a point of one CT in another with SAM embeddings (sample data by default): '
           'prints the match, its score and the time of every stage, saves a three-plane PNG.',
    'semantic': 'UAE-S demo: match with fine + coarse + semantic embeddings on the sample data '
                'by default; prints the match and stage times, saves a three-plane PNG.',
    'semantic_stable_points': 'UAE-S demo with stable-points structural inference: 125 '
                              'neighbours, 4 forward/back iterations, robust affine fit, mean '
                              'vote.',
    'ct_mr': 'UAE-M demo: find a point of an MR in a CT (by default a landmark of a synthetic '
             "subject's MR, found in the CT of the same subject; or --template MR --target CT "
             '--point X Y Z, any modality pair).',
}


def build_parser(description: str, kind: str = 'sam', stable_points: bool = False
                 ) -> argparse.ArgumentParser:
    """Command-line options of the demos.

    Args:
        description (str): the ``--help`` description.
        kind (str): 'sam', 'semantic' or 'ct_mr' (the default checkpoint and data).
        stable_points (bool): the default of ``--stable-points``.

    Returns:
        argparse.ArgumentParser: the parser.
    """
    p = argparse.ArgumentParser(description=description,
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('--checkpoint', default=None,
                   help='trained checkpoint (.pth); default: '
                   f'{DEFAULT_CHECKPOINTS[kind]} when it exists')
    p.add_argument('--config', default=None,
                   help='model config; default: the config stored in the checkpoint')
    p.add_argument('--random-init', action='store_true',
                   help='no checkpoint: a randomly initialised model of --config (to try the '
                   'pipeline; the matches are meaningless)')
    p.add_argument('--template', default=None,
                   help=f'template volume (default: {DEFAULT_TEMPLATE}'
                   + ('; ct_mr: the MR of a synthetic subject)' if kind == 'ct_mr' else ')'))
    p.add_argument('--target', default=None,
                   help=f'target volume (default: {DEFAULT_TARGET}'
                   + ('; ct_mr: the CT of the same subject)' if kind == 'ct_mr' else ')'))
    p.add_argument('--point', type=float, nargs=3, metavar=('X', 'Y', 'Z'), default=None,
                   help='query point in world mm (see --space); default: --landmark on the '
                   'sample CTs, else the centre of --template-label')
    p.add_argument('--template-label', default=None,
                   help='label map whose foreground centre is the query (e.g. '
                   f'{DEFAULT_TEMPLATE_LABEL}, the tumour of lung1)')
    p.add_argument('--landmark', default='carina', choices=list(SAMPLE_LANDMARKS),
                   help='with the sample CTs (no --template / --target): the landmark of lung1 '
                   'queried, its position in lung2 the truth (rule-based, '
                   'docs/en/user_guides/real_landmarks.md)')
    p.add_argument('--space', default='LPS', choices=['LPS', 'RAS'],
                   help='coordinate convention of --point and of the printed match')
    p.add_argument('--method', default=None,
                   choices=['consensus', 'reference', 'coarse_to_fine'],
                   help='consensus (default; reference with --stable-points): a few thousand '
                   'template body matches fit a global rigid + affine and a local robust fit '
                   'per point; reference: argmax over all voxels as in SAM; coarse_to_fine: '
                   'coarse, then local fine')
    p.add_argument('--stable-points', action='store_true', default=stable_points,
                   help='stable-points refinement (UAE-S structural inference)')
    p.add_argument('--no-refine', action='store_true', help='no sub-voxel refinement')
    p.add_argument('--tile-size', type=int, nargs='+', default=None,
                   help='tiled embedding window (z y x voxels at 2 mm) for large volumes')
    p.add_argument('--device', default=None, help='cpu, cuda, cuda:1 (default: GPU if any)')
    p.add_argument('--window', default='auto',
                   help='display window: auto, soft_tissue, lung, bone, minmax')
    p.add_argument('--out', default=DEFAULT_OUT, type=output_file, help='PNG of the match')
    p.add_argument('--seed', type=int, default=0, help='synthetic subjects (demo_ct_mr)')
    p.add_argument('--via-registration', action='store_true',
                   help='also map the query through an embedding-driven registration of the '
                   'target onto the template (grid matches -> RANSAC rigid -> affine -> MI '
                   'B-spline; mmanat.apis.register_with_embeddings): for a model whose single '
                   'matches are unreliable but consistent in bulk, e.g. the shipped UAE-M')
    return p


def _resolve_checkpoint(kind: str, checkpoint: Optional[str], config: Optional[str],
                        random_init: bool) -> Optional[str]:
    if random_init:
        if config is None:
            raise InvalidInputError('--random-init needs --config (e.g. '
                                    'configs/_base_/models/sam_r18_fpn.py).')
        return None
    if checkpoint:
        return checkpoint
    default = default_checkpoint(kind, must_exist=False)
    if default is not None:
        return default
    raise InvalidInputError(
        f'no checkpoint: pass --checkpoint PATH (a model trained with tools/train.py, e.g. '
        f'work_dirs/<config>/iter_20000.pth); the shipped default {DEFAULT_CHECKPOINTS[kind]} '
        'is missing (restore it with `git checkout -- checkpoints/` or set '
        'MMANAT_CHECKPOINT_DIR). To try the pipeline with random weights: '
        '--random-init --config configs/_base_/models/sam_tiny.py.')


def label_centre(label_path: str) -> np.ndarray:
    """World LPS centre (mm) of the foreground voxels of a label map."""
    from ..fileio import read_volume
    lab = read_volume(label_path, modality='OT')
    fg = np.argwhere(lab.array > 0)
    if len(fg) == 0:
        raise InvalidInputError(f'{label_path}: the label map is empty (no voxel > 0); give '
                                '--point X Y Z instead.')
    return lab.array_index_to_world(fg.mean(0))


def _sample_landmark_pair(name: str):
    """The landmark ``name`` of lung1 (query) and of lung2 (truth), world LPS mm."""
    from ..evaluation.landmarks.samples import sample_landmarks
    pts = [sample_landmarks(scan, SAMPLES) for scan in ('lung1', 'lung2')]
    for p in pts:
        if name not in p.names:
            raise InvalidInputError(f'landmark {name!r} is not in the sample landmark set '
                                    f'({", ".join(p.names)}).')
    return tuple(p.xyz[p.names.index(name)] for p in pts)


def _synthetic_ct_mr(seed: int):
    """(MR, CT, query world mm in the MR, its true position in the CT, landmark name) of ONE
    synthetic subject: the CT and the MR of the same subject, the MR moved by a known rigid +
    smooth deformation (as if scanned on another day; see
    :func:`mmanat.evaluation.cases.ct_mr_registration_cases`), or None when the synthetic
    generator is absent. The query is the named landmark deepest inside both images."""
    try:
        from ..evaluation.cases import ct_mr_registration_cases
    except ImportError:
        return None
    case = ct_mr_registration_cases(1, spacing=3.0, seed=seed, n_body_points=0,
                                    edge_margin_mm=20.0)[0]
    if len(case.names) == 0:
        raise InvalidInputError(f'synthetic subject {seed}: no landmark inside both images; '
                                'try another --seed.')
    ct, mr = case.template, case.target
    idx = mr.world_to_index(case.target_points)
    depth = (np.minimum(idx, mr.size - 1 - idx) * mr.spacing).min(1)
    i = int(np.argmax(depth))
    ct.path, mr.path = f'synthetic_ct_subject{seed}', f'synthetic_mr_subject{seed}_moved'
    return mr, ct, case.target_points[i], case.template_points[i], case.names[i]


def _fmt(p, space='LPS') -> str:
    from ..structures.points import convert_space
    q = convert_space(np.asarray(p, np.float64), 'LPS', space)
    return f'({q[0]:.1f}, {q[1]:.1f}, {q[2]:.1f}) mm {space}'


def run_demo(kind: str = 'sam', *, checkpoint: Optional[str] = None,
             config: Optional[str] = None, random_init: bool = False,
             template: Optional[str] = None, target: Optional[str] = None,
             point: Optional[Sequence[float]] = None, template_label: Optional[str] = None,
             landmark: str = 'carina',
             space: str = 'LPS', method: Optional[str] = None, stable_points: bool = False,
             refine: bool = True, tile_size: Optional[Sequence[int]] = None,
             device: Optional[str] = None, window: str = 'auto', out: str = DEFAULT_OUT,
             seed: int = 0, via_registration: bool = False) -> Dict[str, object]:
    """Run one demo (see the module docstring) and print its report.

    Args:
        kind (str): 'sam', 'semantic' or 'ct_mr' (default checkpoint and data).
        checkpoint (str, optional): trained checkpoint (default: the shipped one of ``kind``).
        config (str, optional): model config (default: the checkpoint's).
        random_init (bool): random weights of ``config`` (pipeline test).
        template, target (str, optional): the volumes (default: the sample CTs; ct_mr: the
            MR and CT of one synthetic subject).
        point (tuple[float], optional): query (x, y, z) world mm in ``space``.
        template_label (str, optional): label map whose foreground centre is the query.
        landmark (str): with the sample CTs and no ``point`` / ``template_label``: the
            rule-based landmark of lung1 queried; lung2's is the truth.
        space (str): 'LPS' or 'RAS', of ``point`` and of the printed match.
        method (str, optional): 'consensus' (default), 'reference' (default with
            ``stable_points``) or 'coarse_to_fine'.
        stable_points (bool): stable-points structural inference (UAE-S).
        refine (bool): sub-voxel refinement.
        tile_size (list[int], optional): tiled embedding window (z, y, x) voxels at 2 mm.
        device (str, optional): torch device.
        window (str): display window of the figure.
        out (str): PNG of the match.
        seed (int): synthetic subject (ct_mr).
        via_registration (bool): also map the query through an embedding-driven
            registration of the target onto the template.

    Returns:
        dict: ``query``, ``match`` (MatchResult), ``times`` (s per stage), ``png``, ``truth``
        (the landmark default and ct_mr default), ``registered`` (with
        ``via_registration``); world LPS mm.
    """
    import torch

    from ..fileio import read_volume
    from ..structures.points import convert_space
    from ..visualization import plot_match
    from ..apis import embed, init_model, match, preprocess_image

    times: Dict[str, float] = {}
    truth = None
    template_path, target_path, png_path = template, target, out
    t0 = time.perf_counter()
    checkpoint = _resolve_checkpoint(kind, checkpoint, config, random_init)
    model = init_model(config, checkpoint, device=device, expect='3d-embedding',
                       user='tools/demo.py')
    if kind == 'ct_mr' and template_path is None and target_path is None:
        syn = _synthetic_ct_mr(seed)
        if syn is None:
            raise InvalidInputError('mmanat.datasets.synthetic is not available: pass '
                                    '--template CT --target MR --point X Y Z.')
        template, target, query, truth, what = syn
        what = f'landmark {what!r} of the synthetic MR'
    else:
        template = read_volume(template_path or DEFAULT_TEMPLATE)
        target = read_volume(target_path or DEFAULT_TARGET)
        if point is not None:
            query = convert_space(np.asarray(point, np.float64), space, 'LPS')
            what = 'given point'
        elif template_label is None and template_path is None and target_path is None:
            query, truth = _sample_landmark_pair(landmark)
            what = f'{landmark} of lung1 (rule-based landmark; lung2\'s is the truth)'
        else:
            if template_label is None:
                raise InvalidInputError('give the query with --point X Y Z or '
                                        '--template-label LABELMAP.')
            query = label_centre(template_label)
            what = f'centre of {osp.basename(template_label)}'
    times['load'] = time.perf_counter() - t0

    t0 = time.perf_counter()
    pre_t, pre_g = preprocess_image(template), preprocess_image(target)
    times['preprocess'] = time.perf_counter() - t0

    def sync():
        if torch.cuda.is_available():
            torch.cuda.synchronize()

    t0 = time.perf_counter()
    tile = tile_size if tile_size else None
    maps_t = embed(model, pre_t, tile_size=tile, progress=True)
    maps_g = embed(model, pre_g, tile_size=tile, progress=True)
    sync()
    times['embed'] = time.perf_counter() - t0

    t0 = time.perf_counter()
    if method is None:
        method = 'reference' if stable_points else 'consensus'
    res = match(maps_t, query[None], maps_g, method=method,
                stable_points=stable_points, refine=refine,
                consensus_cfg=dict(template_image=template) if method == 'consensus' else None)
    sync()
    times['match'] = time.perf_counter() - t0

    registered = None
    if via_registration:
        from ..apis import register_with_embeddings
        t0 = time.perf_counter()
        # moving = target, fixed = template: the transform maps template points to the target
        reg = register_with_embeddings(None, target, template, moving_maps=maps_g,
                                       fixed_maps=maps_t, warp=False)
        registered = reg.map_fixed_to_moving(query[None])[0]
        times['register'] = time.perf_counter() - t0

    t0 = time.perf_counter()
    png = plot_match(template, query, target, res.points[0], float(res.scores[0]), png_path,
                     window=window,
                     target_window='minmax' if target.modality != 'CT' else window)
    times['figure'] = time.perf_counter() - t0

    ident = model.mmanat_identity
    levels = '+'.join(maps_t.levels if 'semantic' in maps_g.levels else ('fine', 'coarse'))
    out = sys.stdout
    print(f'model     {ident["config"]} ({ident.get("checkpoint") or "random init"}, sha256 '
          f'{str(ident.get("sha256"))[:12]}), device {maps_t.device}, levels {levels}',
          file=out)
    if checkpoint is None:
        print('WARNING   random weights: the match below is meaningless (pipeline test).',
              file=out)
    if kind in ('semantic',) and 'semantic' not in maps_t.levels:
        print('NOTE      this model has no semantic head; matched with fine + coarse.',
              file=out)
    for role, img in (('template', template), ('target', target)):
        sp = ' x '.join(f'{v:.2f}' for v in img.spacing)
        print(f'{role:9s} {img.path}  ({img.modality}, {" x ".join(map(str, img.shape))} '
              f'z,y,x voxels of {sp} mm)', file=out)
    print(f'query     {_fmt(query, space)}  [{what}]', file=out)
    ijk = ', '.join(str(int(v)) for v in res.index_rounded[0])
    print(f'match     {_fmt(res.points[0], space)}  voxel ({ijk}) of the target  '
          f'score {res.scores[0]:.4f}  [{res.method}]', file=out)
    if truth is not None:
        err = float(np.linalg.norm(res.points[0] - truth))
        print(f'truth     {_fmt(truth, space)}  error {err:.1f} mm', file=out)
    if registered is not None:
        err = ('' if truth is None else
               f'  error {float(np.linalg.norm(registered - truth)):.1f} mm')
        print(f'register  {_fmt(registered, space)}  [query mapped through the '
              f'embedding-driven registration]{err}', file=out)
    print('timing    ' + ' | '.join(f'{k} {v:.2f} s' for k, v in times.items()), file=out)
    print(f'figure    {png}  (the {res.method} match above)', file=out)
    return dict(query=query, match=res, times=times, png=png, truth=truth,
                registered=registered)


def run_demo_command(kind: str, stable_points: bool, argv: Optional[Sequence[str]]
                     ) -> int:
    """Parse the options of one demo and run it (the body of the demo entry points)."""
    name = 'semantic_stable_points' if stable_points else kind
    args = build_parser(DESCRIPTIONS[name], kind, stable_points).parse_args(argv)
    run_demo(kind, checkpoint=args.checkpoint, config=args.config,
             random_init=args.random_init, template=args.template, target=args.target,
             point=args.point, template_label=args.template_label, landmark=args.landmark,
             space=args.space,
             method=args.method, stable_points=args.stable_points, refine=not args.no_refine,
             tile_size=args.tile_size, device=args.device, window=args.window, out=args.out,
             seed=args.seed, via_registration=args.via_registration)
    return 0


@command
def main(argv: Optional[Sequence[str]] = None) -> int:
    """``mmanat-demo`` (``tools/demo.py``): SAM, CT to CT."""
    return run_demo_command('sam', False, argv)


@command
def main_semantic(argv: Optional[Sequence[str]] = None) -> int:
    """``mmanat-demo-semantic`` (``tools/demo_semantic.py``): UAE-S."""
    return run_demo_command('semantic', False, argv)


@command
def main_semantic_stable_points(argv: Optional[Sequence[str]] = None) -> int:
    """``mmanat-demo-semantic-stable-points``: UAE-S with stable-points inference."""
    return run_demo_command('semantic', True, argv)


@command
def main_ct_mr(argv: Optional[Sequence[str]] = None) -> int:
    """``mmanat-demo-ct-mr`` (``tools/demo_ct_mr.py``): UAE-M, MR to CT."""
    return run_demo_command('ct_mr', False, argv)
