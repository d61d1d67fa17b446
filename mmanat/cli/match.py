"""Find template points in one or more target images (SAM/UAE embedding matching).

``mmanat-match`` (same as ``python tools/match.py``). Examples::

    mmanat-match --config configs/sam/sam_r18-fpn3d_8xb6-20k_ct-2mm.py --checkpoint K \\
        --template ct_a.nii.gz --points landmarks.csv --target ct_b.nii.gz --out found.csv
    # several targets: one output file per target, OUT's name + "_" + the target's name
    mmanat-match --checkpoint K --template a.nrrd --points p.mrk.json \\
        --target b.nrrd --target c.nrrd --out found.mrk.json      # found_b / found_c
    # images embedded once with mmanat-embed (tools/embed.py): no model needed
    mmanat-match --template emb/a.emb.pt --points p.csv --target emb/b.emb.pt \\
        --out found.csv

Points: ``.csv`` (name,x,y,z world mm in --space), 3D Slicer ``.mrk.json`` or ``.fcsv`` (their
own coordinate system is honoured on input). Output: the same formats, coordinates in
--space, plus the columns ``score`` (similarity <= 1) and ``i, j, k`` (rounded ITK voxel
indices of the ORIGINAL target image); ``num_kept`` with --stable-points, ``num_local`` with
``--method consensus``, and ``quality``: ``ok``, or ``low_score`` for a match whose score is below
--min-score (probably wrong; a warning names them). Nothing is written unless every target was
matched; a target where every match scores below --min-score (the images do not show the same
anatomy, or the model does not fit them) ends the command with exit code 1 and nothing written.

2D images (radiographs: DICOM, PNG, 2D NRRD/MHA) are matched with a 2D SAM
(docs/en/user_guides/xray_matching.md)::

    mmanat-match --checkpoint checkpoints/sam2d_default.pth --template cxr_a.dcm \
        --points landmarks.csv --target cxr_b.dcm --out found.csv

2D points are ``.csv`` files: ``name,x,y`` (world mm of the image plane, the DICOM / ITK
geometry) or ``name,column,row`` (0-based pixel indices of the template; recognised by that
header, or forced by --pixel). 2D outputs are ``name,x,y,score,column,row,quality`` (rounded pixel
indices of the target) for world-mm queries, ``name,column,row,score,x,y,quality`` (sub-pixel indices
of the target, then world mm) for pixel queries.
"""
import argparse
import os
import os.path as osp
import sys
import time
from typing import List, Optional, Sequence

from ..fileio.formats import VOLUME_EXTENSIONS
from .outputs import output_file
from .runner import command

#: endings stripped from target names: volume files, single DICOM files, 2D pictures,
#: embedding caches
IMAGE_SUFFIXES = VOLUME_EXTENSIONS + ('.dcm', '.png', '.jpg', '.jpeg', '.emb.pt', '.pt')
#: file name of the shipped 2D SAM in checkpoints/ and the tiny 2D SAM config
SAM2D_CHECKPOINT = 'sam2d_default.pth'
SAM2D_TINY_CONFIG = osp.join('configs', '_base_', 'models', 'sam2d_tiny.py')
#: default --min-score. Measured with the shipped SAM (consensus) on the sample CTs: the six
#: lung1 landmarks found in lung2 score 0.53-0.82, the same points "found" in a brain MR
#: -0.05-0.24; the UAE-M demo's CT/MR match scores 0.92. The argmax of the reference method
#: scores 0.36-0.78 even in the wrong image, so the flag catches fewer of its failures.
DEFAULT_MIN_SCORE = 0.3
EXIT_LOW_SCORE = 1


class LowScoreError(Exception):
    """Every match of a target scored below --min-score (exit code 1, nothing written)."""


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """The options of ``mmanat-match``."""
    p = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0].replace('\n', ' '),
        epilog='Cache files (.emb.pt from tools/embed.py) may replace any image.',
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--config', help='model config (default: the one stored in the checkpoint)')
    p.add_argument('--checkpoint', help='trained checkpoint (.pth); default: the shipped '
                   'SAM model, checkpoints/sam_default.pth (2D images: '
                   'checkpoints/sam2d_default.pth; not needed when every image is an '
                   'embedding cache)')
    p.add_argument('--random-init', action='store_true',
                   help='random weights of --config instead of a checkpoint (pipeline tests)')
    p.add_argument('--template', required=True, help='template image (or .emb.pt cache)')
    p.add_argument('--points', required=True,
                   help='query points: .csv, .mrk.json or .fcsv; 2D images: .csv name,x,y '
                   '(world mm) or name,column,row (pixel indices, see --pixel)')
    p.add_argument('--target', required=True, action='append',
                   help='target image or cache; repeat for several targets')
    p.add_argument('--out', required=True, type=output_file,
                   help='output points (.csv, .mrk.json, .fcsv); with several targets one file '
                   'per target named OUT_<target name>')
    p.add_argument('--space', default='LPS', choices=['LPS', 'RAS'],
                   help='coordinate convention of a .csv input and of every output')
    p.add_argument('--method', default=None,
                   choices=['consensus', 'reference', 'coarse_to_fine'],
                   help='consensus (default; reference with --stable-points): RANSAC rigid + '
                   'robust affine over a few thousand template body matches, then a robust '
                   'local fit per point; reference: argmax over all voxels (SAM); '
                   'coarse_to_fine: faster two-level search')
    p.add_argument('--topk', type=int, default=None,
                   help='with --method coarse_to_fine: candidate blocks searched exactly per '
                   'point (default 4; more is slower and closer to the reference answer: with '
                   'the shipped SAM tiny 22 gives the reference voxel for 99 %% of '
                   'cross-subject points, docs/en/advanced_guides/dense_matching.md)')
    p.add_argument('--stable-points', action='store_true',
                   help='stable-points structural inference (UAE-S)')
    p.add_argument('--no-refine', action='store_true', help='no sub-voxel refinement')
    p.add_argument('--tile-size', type=int, nargs='+', default=None,
                   help='tiled embedding window (z y x voxels at 2 mm; 2D images: y x)')
    p.add_argument('--modality', choices=['CT', 'MR', 'XR'], default=None,
                   help='modality of the images when their files do not say')
    p.add_argument('--pixel', action='store_true',
                   help='2D images: --points holds pixel indices name,column,row of the '
                   'template (0-based, integers at pixel centres) and the matches are '
                   'written as name,column,row,score,x,y (sub-pixel indices of each target, '
                   'then world mm); a --points .csv whose header has column,row but no x,y '
                   'turns this on by itself')
    p.add_argument('--min-score', type=float, default=DEFAULT_MIN_SCORE,
                   help='matches scoring below this are flagged (quality column "low_score" '
                   'and a warning); a target where every match does fails (exit 1, nothing '
                   f'written). Default {DEFAULT_MIN_SCORE}; -1 turns the check off')
    p.add_argument('--device', default=None, help='cpu, cuda, cuda:1 (default: GPU if any)')
    p.add_argument('--no-progress', action='store_true', help='no progress bars')
    return p.parse_args(argv)


def target_name(name: str) -> str:
    """File name of an image or cache without its folder and extension."""
    base = osp.basename(osp.normpath(name))
    low = base.lower()
    for suf in IMAGE_SUFFIXES:
        if low.endswith(suf):
            return base[:-len(suf)]
    return osp.splitext(base)[0]


def output_paths(out: str, targets: Sequence[str]) -> List[str]:
    """Output point files: OUT for one target; ``<OUT stem>_<target name><ext>`` for several.

    Args:
        out (str): the ``--out`` path (.csv, .mrk.json or .fcsv).
        targets (list[str]): the target images (names made unique when they repeat).

    Returns:
        list[str]: one output path per target.
    """
    from mmanat.fileio import POINT_EXTENSIONS
    from mmanat.utils.exceptions import InvalidInputError
    low = out.lower()
    ext = next((e for e in POINT_EXTENSIONS if low.endswith(e)), None)
    if ext is None:
        raise InvalidInputError(f'--out {out}: unknown point-file extension; use one of '
                                f'{", ".join(POINT_EXTENSIONS)}.')
    if len(targets) == 1:
        return [out]
    stem = out[:-len(ext)]
    names = [target_name(t) for t in targets]
    if len(set(names)) != len(names):  # same file name in different folders
        names = [f'{n}_{i}' for i, n in enumerate(names)]
    return [f'{stem}_{n}{out[-len(ext):]}' for n in names]


@command
def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry of ``mmanat-match``: parse, then :func:`match_files`."""
    args = parse_args(argv)
    try:
        _match_main(args)
    except LowScoreError as err:
        from .runner import error_line
        print(error_line(err), file=sys.stderr, flush=True)
        return EXIT_LOW_SCORE
    return 0


def _match_main(args) -> None:
    match_files(args.template, args.points, args.target, args.out, config=args.config,
                checkpoint=args.checkpoint, random_init=args.random_init, space=args.space,
                method=args.method, stable_points=args.stable_points,
                refine=not args.no_refine, tile_size=args.tile_size, modality=args.modality,
                device=args.device, progress=not args.no_progress, pixel=args.pixel,
                min_score=args.min_score, topk=args.topk)


def shipped_checkpoint(planar: bool) -> str:
    """The shipped default checkpoint: the SAM of CT volumes, or for 2D images the 2D SAM
    (``checkpoints/sam2d_default.pth``).

    Raises:
        InvalidInputError: the file is missing (saying what to pass instead).
    """
    from mmanat.utils.exceptions import InvalidInputError
    from mmanat.utils.model_zoo import DEFAULT_CHECKPOINTS, checkpoint_dir, default_checkpoint
    if not planar:
        return default_checkpoint('sam')
    path = osp.join(checkpoint_dir(), DEFAULT_CHECKPOINTS.get('sam2d', SAM2D_CHECKPOINT))
    if not osp.isfile(path):
        raise InvalidInputError(
            f'{path}: the shipped 2D SAM checkpoint is missing; pass --checkpoint PATH (a 2D '
            'SAM trained with tools/train.py), or --random-init --config '
            f'{SAM2D_TINY_CONFIG} to try the pipeline.')
    return path


def _dims_text(planar: bool) -> str:
    return 'a 2D image' if planar else 'a 3D volume'


def read_query_points(points_file: str, template: str, planar: bool, space: str = 'LPS',
                      pixel: bool = False):
    """The query points of ``points_file`` for a template of the given dimension.

    Args:
        points_file (str): .csv / .mrk.json / .fcsv (3D), .csv name,x,y or name,column,row
            (2D).
        template (str): the template's path (for messages).
        planar (bool): the template is a 2D image.
        space (str): 'LPS' or 'RAS' (3D .csv files).
        pixel (bool): read the file as pixel ``column,row`` indices (2D).

    Returns:
        tuple: ``(PointSet, is_pixel)``; pixel points are ``(N, 2)`` column, row.

    Raises:
        InvalidInputError: points of another dimension than the template, pixel points
            with a volume, RAS with 2D points, no point.
    """
    from mmanat.fileio import read_points
    from mmanat.fileio.points_io import is_pixel_points_file, read_pixel_points
    from mmanat.utils.exceptions import InvalidInputError
    is_pixel = pixel or is_pixel_points_file(points_file)
    if is_pixel and not planar:
        raise InvalidInputError(
            f'{points_file}: pixel points (column,row) are for 2D images, but the template '
            f'{template} is a 3D volume; give world points name,x,y,z (mm).')
    if planar and space != 'LPS':
        raise InvalidInputError(
            f'--space {space}: 2D points are world x, y of the image plane (no LPS / RAS '
            f'choice); drop --space for the 2D template {template}.')
    if is_pixel:
        return read_pixel_points(points_file, min_points=1), True
    points = read_points(points_file, space=space, min_points=1)
    got = points.xyz.shape[1]
    if planar and got == 3:
        raise InvalidInputError(
            f'{points_file}: holds 3D points (x, y, z) but the template {template} is a 2D '
            'image; give 2D points: name,x,y (world mm) or name,column,row (pixels, --pixel).')
    if not planar and got == 2:
        raise InvalidInputError(
            f'{points_file}: holds 2D points (x, y) but the template {template} is a 3D '
            'volume; give 3D points name,x,y,z (world mm), or match 2D images.')
    return points, False


def pixel_to_world(maps, column_row):
    """Pixel ``(column, row)`` indices of the 2D image the (planar) ``maps`` were made from
    -> ``(N, 2)`` world mm."""
    import numpy as np
    cr = np.asarray(column_row, dtype=np.float64).reshape(-1, 2)
    ijk = np.concatenate([cr, np.zeros((len(cr), 1))], 1)
    return maps.source_grid.index_to_world(ijk)[:, :2]


def result_pointset(res, points, pixel: bool):
    """The matches of ``points`` as a :class:`PointSet` for writing: 3D / 2D world points with
    ``score`` and rounded voxel (pixel) indices; with ``pixel`` (2D) sub-pixel ``column, row``
    with ``score, x, y``. The query's own extra columns come first."""
    from mmanat.structures import PointSet
    if pixel:
        found = PointSet(res.index, names=points.names,
                         extra=dict(score=[float(v) for v in res.scores],
                                    x=[float(v) for v in res.points[:, 0]],
                                    y=[float(v) for v in res.points[:, 1]]))
        drop = set(found.extra) | {'column', 'row'}
    else:
        found = res.to_pointset(names=points.names)
        drop = set(found.extra)
    extra = {k: v for k, v in points.extra.items() if k not in drop}
    extra.update(found.extra)
    return PointSet(found.xyz, names=points.names, extra=extra)


def flag_low_scores(found, scores, min_score: float, target: str):
    """Add the ``quality`` column (``ok`` / ``low_score``: score below ``min_score``) to the
    matches ``found`` of ``target`` and warn on stderr about the low ones. Returns ``found``."""
    low = [float(v) < min_score for v in scores]
    found.extra['quality'] = ['low_score' if b else 'ok' for b in low]
    if any(low):
        names = [n for n, b in zip(found.names, low) if b]
        shown = ', '.join(names[:8]) + (f' and {len(names) - 8} more' if len(names) > 8 else '')
        print(f'warning: {target}: {len(names)} of {len(low)} matches scored below '
              f'--min-score {min_score:g} ({shown}); they are probably wrong (quality '
              '"low_score" in the output).', file=sys.stderr, flush=True)
    return found


def match_files(template: str, points_file: str, targets: Sequence[str], out: str, *,
                config: Optional[str] = None, checkpoint: Optional[str] = None,
                random_init: bool = False, space: str = 'LPS', method: Optional[str] = None,
                stable_points: bool = False, refine: bool = True,
                tile_size: Optional[Sequence[int]] = None, modality: Optional[str] = None,
                device: Optional[str] = None, progress: bool = True,
                pixel: bool = False, min_score: float = DEFAULT_MIN_SCORE,
                topk: Optional[int] = None) -> List[str]:
    """Find the points of ``points_file`` (in ``template``) in every target; write them.

    Args:
        template (str): template image (a volume or a 2D image), or an ``.emb.pt`` cache of
            ``mmanat-embed``.
        points_file (str): query points (.csv world mm in ``space``, .mrk.json, .fcsv; for a
            2D template .csv ``name,x,y`` world mm or ``name,column,row`` pixels).
        targets (list[str]): target images or caches (of the template's dimension).
        out (str): output point file; one per target (see :func:`output_paths`); .csv for
            2D images.
        config (str, optional): model config (default: the checkpoint's).
        checkpoint (str, optional): checkpoint (default: the shipped SAM model; for 2D
            images the shipped 2D SAM, checkpoints/sam2d_default.pth).
        random_init (bool): random weights of ``config`` (pipeline tests).
        space (str): 'LPS' or 'RAS', convention of a .csv input and of every output (3D).
        method (str, optional): 'consensus' (default; samples in the template's body mask,
            in the whole template image when the template is a cache), 'reference' (argmax
            over all voxels; the default with ``stable_points``) or 'coarse_to_fine'.
        stable_points (bool): stable-points structural inference (UAE-S).
        refine (bool): sub-voxel refinement.
        tile_size (list[int], optional): tiled embedding window (z, y, x) voxels at 2 mm
            ((y, x) for 2D images).
        modality (str, optional): 'CT', 'MR' or 'XR' when the files do not say.
        device (str, optional): torch device (default: GPU if any).
        progress (bool): progress bars.
        pixel (bool): 2D: the points are pixel ``column,row`` of the template and the
            outputs ``name,column,row,score,x,y`` (also when ``points_file`` has the header
            ``name,column,row``).
        min_score (float): matches scoring below it get ``quality`` ``low_score`` and a
            warning; a target where every match does raises :class:`LowScoreError`.
        topk (int, optional): candidate blocks of ``method='coarse_to_fine'`` (default 4).

    Returns:
        list[str]: the written files (nothing is written unless every target matched).

    Raises:
        InvalidInputError: a missing file, a bad extension, points outside the template,
            images, points or a model of different dimensions (2D / 3D).
        LowScoreError: every match of a target scored below ``min_score``.
    """
    import numpy as np

    from mmanat.apis import embed, init_model, load_embeddings
    from mmanat.apis.cache import is_cache_path
    from mmanat.apis.matching import Matcher, check_query_points
    from mmanat.fileio import read_image, write_points
    from mmanat.fileio.points_io import write_pixel_points
    from mmanat.structures import PointSet, is_planar
    from mmanat.utils.exceptions import InvalidInputError

    t_start = time.perf_counter()
    if topk is not None and (method != 'coarse_to_fine' or int(topk) < 1):
        raise InvalidInputError(
            f'--topk {topk}: the number of candidate blocks is an option of --method '
            f'coarse_to_fine (a positive integer); the method here is '
            f'{method or "the default"}.')
    outs = output_paths(out, targets)
    images = [template] + list(targets)
    for path in images:
        if not osp.exists(path):
            raise InvalidInputError(f'{path}: file not found (working directory '
                                    f'{os.getcwd()}); check the path.')
    # the template first: its dimension decides the points, the model and the outputs
    images_read = {}
    t0 = time.perf_counter()
    if is_cache_path(template):
        tpl = load_embeddings(template, device=device)  # its model is checked below
    else:
        images_read[template] = read_image(template, modality=modality)
    planar = is_planar(tpl if is_cache_path(template) else images_read[template])
    t_embed = time.perf_counter() - t0
    points, is_pixel = read_query_points(points_file, template, planar, space, pixel)
    if planar and not out.lower().endswith('.csv'):
        raise InvalidInputError(f'--out {out}: 2D matches are written to .csv files only; '
                                'use a .csv name.')
    need_model = not all(is_cache_path(p) for p in images)
    model = None
    if need_model:
        if random_init and config is None:
            raise InvalidInputError('--random-init needs --config.')
        if checkpoint is None and not random_init:
            checkpoint = shipped_checkpoint(planar)
            print(f'[match] no --checkpoint: using the shipped {checkpoint}')
        model = init_model(config, None if random_init else checkpoint, device=device,
                           expect='2d-dense-embedding' if planar else '3d-embedding',
                           user=f'tools/match.py ({_dims_text(planar)} template, {template})')
    tile = tile_size if tile_size else None
    noted = set()

    def maps_of(path):
        if is_cache_path(path):
            maps = load_embeddings(path, expected_model=model, device=device)
        else:
            if path not in images_read:
                images_read[path] = read_image(path, modality=modality)
            maps = images_read[path]
        if is_planar(maps) != planar:
            raise InvalidInputError(
                f'{path}: {_dims_text(is_planar(maps))}, but the template {template} is '
                f'{_dims_text(planar)}; match 2D images with 2D images and volumes with '
                'volumes.')
        if not is_cache_path(path):
            if planar and not maps.meta.get('spacing_known', True) and path not in noted:
                noted.add(path)
                print(f'[match] {path}: the file stores no pixel spacing: 1 mm per pixel '
                      'assumed (world x, y = pixel indices); use files that store it (DICOM '
                      'Pixel Spacing, NRRD) for matches in mm')
            maps = embed(model, maps, tile_size=tile, progress=progress)
        return maps

    if method is None:
        method = 'reference' if stable_points else 'consensus'
    t0 = time.perf_counter()
    tpl = maps_of(template)
    consensus_cfg = None
    if method == 'consensus' and template in images_read:
        # samples in the template's body mask, computed once for every target (about 3 s
        # on a 512 x 512 x 48 CT)
        from ..structures.body import body_mask
        consensus_cfg = dict(mask=body_mask(images_read[template]))
    if is_pixel:  # pixel column, row of the template -> world mm
        points = PointSet(pixel_to_world(tpl, points.xyz), names=points.names,
                          extra=points.extra)
    check_query_points(points, tpl)  # fail before embedding the targets
    t_embed += time.perf_counter() - t0
    results = []
    t_match = 0.0
    for target in targets:
        t0 = time.perf_counter()
        tgt = maps_of(target)
        t_embed += time.perf_counter() - t0
        t0 = time.perf_counter()
        res = Matcher(tpl, tgt).match(points, method=method, refine=refine,
                                      stable_points=stable_points, progress=progress,
                                      consensus_cfg=consensus_cfg,
                                      **({} if topk is None else dict(topk=int(topk))))
        t_match += time.perf_counter() - t0
        results.append(flag_low_scores(result_pointset(res, points, is_pixel), res.scores,
                                       min_score, target))
        if len(points) <= 20:
            print(f'{target}:')
            for i, name in enumerate(points.names):
                if planar:
                    x, y = res.points[i]
                    c, r = res.index[i]
                    print(f'  {name:>12s}  ({x:8.2f}, {y:8.2f}) mm  pixel (column {c:.1f}, '
                          f'row {r:.1f})  score {res.scores[i]:.4f}')
                    continue
                xyz = PointSet(res.points[i:i + 1]).in_space(space)[0]
                ijk = ', '.join(str(int(v)) for v in res.index_rounded[i])
                print(f'  {name:>12s}  ({xyz[0]:8.2f}, {xyz[1]:8.2f}, {xyz[2]:8.2f}) mm '
                      f'{space}  voxel ({ijk})  score {res.scores[i]:.4f}')
        else:
            sc = res.scores
            print(f'{target}: {len(points)} points, score median {np.median(sc):.4f} '
                  f'(min {sc.min():.4f}, max {sc.max():.4f})')
    failed = [t for t, ps in zip(targets, results)
              if all(q == 'low_score' for q in ps.extra['quality'])]
    if failed:
        raise LowScoreError(
            f'every match in {", ".join(failed)} scored below --min-score {min_score:g}: the '
            'images do not seem to show the same anatomy (or the model does not fit them: CT/MR '
            'models for volumes, a 2D SAM for radiographs). Nothing written; pass --min-score -1 '
            'to write the matches anyway.')
    if is_pixel:
        written = [write_pixel_points(ps, path) for ps, path in zip(results, outs)]
    else:
        written = [write_points(ps, path, space=space) for ps, path in zip(results, outs)]
    for path in written:
        print(f'wrote {path}')
    print(f'timing: embed/load {t_embed:.2f} s, match {t_match:.2f} s, total '
          f'{time.perf_counter() - t_start:.2f} s ({method}'
          f'{", stable points" if stable_points else ""})')
    return written
