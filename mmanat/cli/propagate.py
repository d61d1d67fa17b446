"""Carry a label map, a point set or mesh vertices from a template image to a target image
through dense anatomical-embedding matches and a regularising fit.

``mmanat-propagate`` (same as ``python tools/propagate.py``). Examples::

    mmanat-propagate --template ct_a.nii.gz --labels organs_a.nii.gz --target ct_b.nii.gz \\
        --out organs_b.nii.gz
    # also points and a mesh; images embedded before with mmanat-embed; check the result
    mmanat-propagate --template emb/a.emb.pt --target emb/b.emb.pt --points a.csv \\
        --out-points b.csv --mesh liver_a.obj --out-mesh liver_b.obj
    mmanat-propagate --template a.nrrd --labels a_lungs.nrrd --target b.nrrd --out b.nii.gz \\
        --target-labels b_lungs.nrrd        # prints the Dice of every label

Labels: points every --grid-spacing mm over the target's body are matched into the template,
low-score matches (<= --score-threshold) dropped, a RANSAC rigid + robust affine fit and
(--regularization tps, default) a smoothing thin-plate spline of the residuals give a smooth
target -> template map, and the template labels are resampled through it by nearest
neighbour on the target grid (:func:`mmanat.apis.propagation.propagate_labels`). Points
(``.csv``/``.mrk.json``/``.fcsv``) and mesh vertices (ASCII ``.obj``/``.ply``/legacy
``.vtk``) go through the template -> target map fitted the same way from a grid over the
template. An ``.emb.pt`` cache may replace either image (then its whole grid is sampled, no
body mask).
"""
import argparse
import json
import os
import os.path as osp
import time
from typing import Dict, Optional, Sequence

from .outputs import output_file
from .runner import command


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """The options of ``mmanat-propagate``."""
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0].replace('\n', ' '),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--template', required=True, help='template image (or .emb.pt cache)')
    p.add_argument('--target', required=True, help='target image (or .emb.pt cache)')
    p.add_argument('--labels', help='label map of the template (any grid over it)')
    p.add_argument('--out', type=output_file, help='output label map on the target grid '
                   '(.nii.gz, .nrrd, ...); needs --labels')
    p.add_argument('--points', help='template points (.csv, .mrk.json, .fcsv)')
    p.add_argument('--out-points', type=output_file, help='the points in the target')
    p.add_argument('--mesh', help='template mesh (ASCII .obj, .ply or legacy .vtk)')
    p.add_argument('--out-mesh', type=output_file, help='the mesh with target vertices')
    p.add_argument('--space', default='LPS', choices=['LPS', 'RAS'],
                   help='coordinates of a .csv point file, of the meshes and of the outputs')
    p.add_argument('--target-labels', help='reference labels of the target: print the Dice '
                   'of every label (and write them to --out with .json appended)')
    p.add_argument('--config', help='model config (default: the one stored in the checkpoint)')
    p.add_argument('--checkpoint', help='checkpoint (default: the shipped SAM model, '
                   'checkpoints/sam_default.pth; not needed when both images are caches)')
    p.add_argument('--random-init', action='store_true',
                   help='random weights of --config (pipeline tests only)')
    p.add_argument('--grid-spacing', type=float, nargs='+', default=[16.0],
                   help='step (mm) of the matched grid points, one value or x y z')
    p.add_argument('--score-threshold', type=float, default=0.5,
                   help='drop matches with a similarity at or below this')
    p.add_argument('--regularization', default='tps', choices=['tps', 'affine'],
                   help='affine: robust affine only; tps: plus a smoothing thin-plate spline')
    p.add_argument('--smoothing', type=float, default=100.0,
                   help='thin-plate spline smoothing (0: interpolate the matches)')
    p.add_argument('--method', default='coarse_to_fine',
                   choices=['coarse_to_fine', 'reference', 'consensus'],
                   help='matching method of the grid points')
    p.add_argument('--tile-size', type=int, nargs='+', default=None,
                   help='tiled embedding window (z y x voxels at 2 mm)')
    p.add_argument('--modality', choices=['CT', 'MR'], default=None,
                   help='modality of the images when their files do not say')
    p.add_argument('--device', default=None, help='cpu, cuda, cuda:1 (default: GPU if any)')
    args = p.parse_args(argv)
    if not (args.labels or args.points or args.mesh):
        p.error('give something to propagate: --labels, --points and/or --mesh.')
    for src, dst, name in ((args.labels, args.out, 'labels'), (args.points, args.out_points,
                                                                'points'),
                           (args.mesh, args.out_mesh, 'mesh')):
        out_flag = {'labels': '--out', 'points': '--out-points', 'mesh': '--out-mesh'}[name]
        if bool(src) != bool(dst):
            p.error(f'--{name} and {out_flag} go together.')
    if args.target_labels and not args.labels:
        p.error('--target-labels needs --labels.')
    return args


@command
def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry of ``mmanat-propagate``: parse, then :func:`propagate_files`."""
    args = parse_args(argv)
    propagate_files(args.template, args.target, labels=args.labels, out=args.out,
                    points=args.points, out_points=args.out_points, mesh=args.mesh,
                    out_mesh=args.out_mesh, space=args.space, target_labels=args.target_labels,
                    config=args.config, checkpoint=args.checkpoint,
                    random_init=args.random_init, grid_spacing=args.grid_spacing,
                    score_threshold=args.score_threshold, regularization=args.regularization,
                    smoothing=args.smoothing, method=args.method, tile_size=args.tile_size,
                    modality=args.modality, device=args.device)
    return 0


def _load(path: str, model, modality, tile_size, device):
    """``(maps, image or None)`` of an image file or an embedding cache."""
    from mmanat.apis import embed, load_embeddings
    from mmanat.apis.cache import is_cache_path
    from mmanat.fileio import read_image
    from mmanat.utils.exceptions import InvalidInputError
    if not osp.exists(path):
        raise InvalidInputError(f'{path}: file not found (working directory {os.getcwd()}); '
                                'check the path.')
    if is_cache_path(path):
        return load_embeddings(path, expected_model=model, device=device), None
    image = read_image(path, modality=modality)
    if image.ndim != 3:
        raise InvalidInputError(f'{path}: propagation needs 3D volumes, got a {image.ndim}D '
                                'image.')
    return embed(model, image, tile_size=tile_size or None), image


def propagate_files(template: str, target: str, *, labels: Optional[str] = None,
                    out: Optional[str] = None, points: Optional[str] = None,
                    out_points: Optional[str] = None, mesh: Optional[str] = None,
                    out_mesh: Optional[str] = None, space: str = 'LPS',
                    target_labels: Optional[str] = None, config: Optional[str] = None,
                    checkpoint: Optional[str] = None, random_init: bool = False,
                    grid_spacing: Sequence[float] = (16.0,), score_threshold: float = 0.5,
                    regularization: str = 'tps', smoothing: float = 100.0,
                    method: str = 'coarse_to_fine', tile_size: Optional[Sequence[int]] = None,
                    modality: Optional[str] = None, device: Optional[str] = None) -> Dict:
    """Propagate labels / points / mesh vertices from ``template`` to ``target``; write them.

    Args: as the command-line options of :func:`parse_args` (``labels`` + ``out``,
    ``points`` + ``out_points``, ``mesh`` + ``out_mesh``; at least one pair).

    Returns:
        dict: the written paths (``labels``, ``points``, ``mesh``), ``dice`` (label id ->
        Dice, with ``target_labels``) and ``timing`` (seconds).

    Raises:
        InvalidInputError: missing files, 2D images, too few confident matches, a label map
            outside the template, bad point or mesh files.
    """
    import numpy as np

    from mmanat.apis import init_model
    from mmanat.apis.cache import is_cache_path
    from mmanat.apis.propagation import dice_per_label, propagate_labels, propagate_points
    from mmanat.fileio import read_image, read_points, write_image, write_points
    from mmanat.fileio.mesh_io import read_mesh_vertices, write_mesh_vertices
    from mmanat.structures import PointSet
    from mmanat.structures.resample import resample_to_reference
    from mmanat.utils.exceptions import InvalidInputError
    from mmanat.utils.model_zoo import resolve_checkpoint

    t_start = time.perf_counter()
    for path in [p for p in (template, target, labels, points, mesh, target_labels) if p]:
        if not osp.exists(path):
            raise InvalidInputError(f'{path}: file not found (working directory '
                                    f'{os.getcwd()}); check the path.')
    # read the small inputs first: a bad file fails before the model runs
    label_map = read_image(labels) if labels else None
    query = read_points(points, space=space, min_points=1) if points else None
    vertices = read_mesh_vertices(mesh, space=space) if mesh else None
    model = None
    if not (is_cache_path(template) and is_cache_path(target)):
        if random_init and config is None:
            raise InvalidInputError('--random-init needs --config.')
        checkpoint = resolve_checkpoint(checkpoint, random_init, config, 'sam')
        model = init_model(config, checkpoint, device=device, expect='3d-embedding',
                           user='tools/propagate.py')
    t0 = time.perf_counter()
    tpl_maps, tpl_image = _load(template, model, modality, tile_size, device)
    tgt_maps, tgt_image = _load(target, model, modality, tile_size, device)
    timing = {'embed_s': time.perf_counter() - t0}
    fit = dict(score_threshold=score_threshold, regularization=regularization,
               smoothing=smoothing, method=method)
    step = list(grid_spacing)
    written: Dict = {}
    if label_map is not None:
        t0 = time.perf_counter()
        result, fld = propagate_labels(tpl_maps, label_map, tgt_maps, tgt_image,
                                       grid_spacing_mm=step, **fit)
        written['labels'] = write_image(result, out)
        timing['labels_s'] = time.perf_counter() - t0
        info = fld.info
        print(f'labels: {info["n_kept"]} of {info["n_points"]} target grid matches kept, '
              f'{info["n_used"]} used ({info["regularization"]}, affine residual '
              f'{info["affine_residual_mm"]:.1f} mm) -> {written["labels"]}')
        if target_labels:
            truth = read_image(target_labels)
            ref = result if tgt_image is None else tgt_image
            if not truth.same_geometry(ref):
                truth = resample_to_reference(truth, ref, 'nearest', default_value=0)
            dice = dice_per_label(result.array, truth.array)
            written['dice'] = dice
            for k, v in dice.items():
                print(f'  label {k}: Dice {v:.4f}')
            with open(written['labels'] + '.json', 'w', encoding='utf-8') as fh:
                json.dump({'dice': {str(k): v for k, v in dice.items()},
                           'mean_dice': float(np.nanmean(list(dice.values()))),
                           'fit': {k: v for k, v in info.items()
                                   if isinstance(v, (int, float, str))}}, fh, indent=2)
    if query is not None or vertices is not None:
        t0 = time.perf_counter()
        sets = [x for x in (query.xyz if query is not None else None, vertices)
                if x is not None]
        moved, fld = propagate_points(tpl_maps, np.concatenate(sets), tgt_maps, tpl_image,
                                      grid_spacing_mm=step, **fit)
        n_q = len(query) if query is not None else 0
        if query is not None:
            inside = tgt_maps.source_grid.contains_world(moved[:n_q], margin=0.5)
            extra = dict(query.extra)
            extra['in_target'] = [int(v) for v in inside]
            written['points'] = write_points(PointSet(moved[:n_q], names=query.names,
                                                      extra=extra), out_points, space=space)
            if not inside.all():
                print(f'warning: {int((~inside).sum())} propagated point(s) fall outside the '
                      'target image (column in_target = 0).')
        if vertices is not None:
            written['mesh'] = write_mesh_vertices(mesh, moved[n_q:], out_mesh, space=space)
        timing['points_s'] = time.perf_counter() - t0
        print(f'points: {fld.info["n_used"]} of {fld.info["n_points"]} template grid matches '
              f'used ({fld.info["regularization"]}); '
              f'{n_q} points, {0 if vertices is None else len(vertices)} mesh vertices')
    for key in ('labels', 'points', 'mesh'):
        if key in written:
            print(f'wrote {written[key]}')
    timing['total_s'] = time.perf_counter() - t_start
    print('timing: ' + ', '.join(f'{k[:-2]} {v:.1f} s' for k, v in timing.items()))
    written['timing'] = timing
    return written
