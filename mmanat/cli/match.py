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
``--method consensus``. Nothing is written unless every target was matched.
"""
import argparse
import os
import os.path as osp
import time
from typing import List, Optional, Sequence

from ..fileio.formats import VOLUME_EXTENSIONS
from .outputs import output_file
from .runner import command

#: endings stripped from target names: volume files, single DICOM files, embedding caches
IMAGE_SUFFIXES = VOLUME_EXTENSIONS + ('.dcm', '.emb.pt', '.pt')


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """The options of ``mmanat-match``."""
    p = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0].replace('\n', ' '),
        epilog='Cache files (.emb.pt from tools/embed.py) may replace any image.',
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--config', help='model config (default: the one stored in the checkpoint)')
    p.add_argument('--checkpoint', help='trained checkpoint (.pth); default: the shipped '
                   'SAM model, checkpoints/sam_default.pth (not needed when every image is an '
                   'embedding cache)')
    p.add_argument('--random-init', action='store_true',
                   help='random weights of --config instead of a checkpoint (pipeline tests)')
    p.add_argument('--template', required=True, help='template image (or .emb.pt cache)')
    p.add_argument('--points', required=True, help='query points: .csv, .mrk.json or .fcsv')
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
    p.add_argument('--stable-points', action='store_true',
                   help='stable-points structural inference (UAE-S)')
    p.add_argument('--no-refine', action='store_true', help='no sub-voxel refinement')
    p.add_argument('--tile-size', type=int, nargs='+', default=None,
                   help='tiled embedding window (z y x voxels at 2 mm)')
    p.add_argument('--modality', choices=['CT', 'MR'], default=None,
                   help='modality of the images when their files do not say')
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
    match_files(args.template, args.points, args.target, args.out, config=args.config,
                checkpoint=args.checkpoint, random_init=args.random_init, space=args.space,
                method=args.method, stable_points=args.stable_points,
                refine=not args.no_refine, tile_size=args.tile_size, modality=args.modality,
                device=args.device, progress=not args.no_progress)
    return 0


def match_files(template: str, points_file: str, targets: Sequence[str], out: str, *,
                config: Optional[str] = None, checkpoint: Optional[str] = None,
                random_init: bool = False, space: str = 'LPS', method: Optional[str] = None,
                stable_points: bool = False, refine: bool = True,
                tile_size: Optional[Sequence[int]] = None, modality: Optional[str] = None,
                device: Optional[str] = None, progress: bool = True) -> List[str]:
    """Find the points of ``points_file`` (in ``template``) in every target; write them.

    Args:
        template (str): template image, or an ``.emb.pt`` cache of ``mmanat-embed``.
        points_file (str): query points (.csv world mm in ``space``, .mrk.json, .fcsv).
        targets (list[str]): target images or caches.
        out (str): output point file; one per target (see :func:`output_paths`).
        config (str, optional): model config (default: the checkpoint's).
        checkpoint (str, optional): checkpoint (default: the shipped SAM model).
        random_init (bool): random weights of ``config`` (pipeline tests).
        space (str): 'LPS' or 'RAS', convention of a .csv input and of every output.
        method (str, optional): 'consensus' (default; samples in the template's body mask,
            in the whole template image when the template is a cache), 'reference' (argmax
            over all voxels; the default with ``stable_points``) or 'coarse_to_fine'.
        stable_points (bool): stable-points structural inference (UAE-S).
        refine (bool): sub-voxel refinement.
        tile_size (list[int], optional): tiled embedding window (z, y, x) voxels at 2 mm.
        modality (str, optional): 'CT' or 'MR' when the files do not say.
        device (str, optional): torch device (default: GPU if any).
        progress (bool): progress bars.

    Returns:
        list[str]: the written files (nothing is written unless every target matched).

    Raises:
        InvalidInputError: a missing file, a bad extension, points outside the template.
    """
    import numpy as np

    from mmanat.apis import embed, init_model, load_embeddings
    from mmanat.apis.cache import is_cache_path
    from mmanat.apis.matching import Matcher, check_query_points
    from mmanat.fileio import read_points, read_volume, write_points
    from mmanat.structures import PointSet
    from mmanat.utils.exceptions import InvalidInputError

    t_start = time.perf_counter()
    points = read_points(points_file, space=space, ndim=3, min_points=1)
    outs = output_paths(out, targets)
    images = [template] + list(targets)
    for path in images:
        if not osp.exists(path):
            raise InvalidInputError(f'{path}: file not found (working directory '
                                    f'{os.getcwd()}); check the path.')
    need_model = not all(is_cache_path(p) for p in images)
    model = None
    if need_model:
        if checkpoint is None and not random_init:
            from mmanat.utils.model_zoo import default_checkpoint
            checkpoint = default_checkpoint('sam')
            print(f'[match] no --checkpoint: using the shipped {checkpoint}')
        if random_init and config is None:
            raise InvalidInputError('--random-init needs --config.')
        model = init_model(config, None if random_init else checkpoint, device=device,
                           expect='3d-embedding', user='tools/match.py')
    tile = tile_size if tile_size else None

    images_read = {}

    def maps_of(path):
        if is_cache_path(path):
            return load_embeddings(path, expected_model=model, device=device)
        images_read[path] = read_volume(path, modality=modality)
        return embed(model, images_read[path], tile_size=tile, progress=progress)

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
    check_query_points(points, tpl)  # fail before embedding the targets
    t_embed = time.perf_counter() - t0
    results = []
    t_match = 0.0
    for target in targets:
        t0 = time.perf_counter()
        tgt = maps_of(target)
        t_embed += time.perf_counter() - t0
        t0 = time.perf_counter()
        res = Matcher(tpl, tgt).match(points, method=method, refine=refine,
                                      stable_points=stable_points, progress=progress,
                                      consensus_cfg=consensus_cfg)
        t_match += time.perf_counter() - t0
        found = res.to_pointset(names=points.names)
        extra = {k: v for k, v in points.extra.items() if k not in found.extra}
        extra.update(found.extra)
        results.append(PointSet(found.xyz, names=points.names, extra=extra))
        if len(points) <= 20:
            print(f'{target}:')
            for i, name in enumerate(points.names):
                xyz = found.in_space(space)[i]
                ijk = ', '.join(str(int(v)) for v in res.index_rounded[i])
                print(f'  {name:>12s}  ({xyz[0]:8.2f}, {xyz[1]:8.2f}, {xyz[2]:8.2f}) mm '
                      f'{space}  voxel ({ijk})  score {res.scores[i]:.4f}')
        else:
            sc = res.scores
            print(f'{target}: {len(points)} points, score median {np.median(sc):.4f} '
                  f'(min {sc.min():.4f}, max {sc.max():.4f})')
    written = [write_points(ps, path, space=space) for ps, path in zip(results, outs)]
    for path in written:
        print(f'wrote {path}')
    print(f'timing: embed/load {t_embed:.2f} s, match {t_match:.2f} s, total '
          f'{time.perf_counter() - t_start:.2f} s ({method}'
          f'{", stable points" if stable_points else ""})')
    return written
