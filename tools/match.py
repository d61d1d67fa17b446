#!/usr/bin/env python
"""Find template points in one or more target images (SAM/UAE embedding matching).

Examples::

    python tools/match.py --config configs/sam/sam_r18_fpn_ct.py --checkpoint K \\
        --template ct_a.nii.gz --points landmarks.csv --target ct_b.nii.gz --out found.csv
    # several targets: one output file per target, OUT's name + "_" + the target's name
    python tools/match.py --checkpoint K --template a.nrrd --points p.mrk.json \\
        --target b.nrrd --target c.nrrd --out found.mrk.json      # found_b / found_c
    # images embedded once with tools/embed.py: no model needed
    python tools/match.py --template emb/a.emb.pt --points p.csv --target emb/b.emb.pt \\
        --out found.csv

Points: ``.csv`` (name,x,y,z world mm in --space), 3D Slicer ``.mrk.json`` or ``.fcsv`` (their
own coordinate system is honoured on input). Output: the same formats, coordinates in
--space, plus the columns ``score`` (similarity <= 1) and ``i, j, k`` (rounded ITK voxel
indices of the ORIGINAL target image); ``num_kept`` with --stable-points. Nothing is written
unless every target was matched.
"""
import argparse
import os
import os.path as osp
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if ROOT not in sys.path:  # allow running from a checkout without installation
    sys.path.insert(0, ROOT)

_IMAGE_SUFFIXES = ('.nii.gz', '.nii', '.nrrd', '.nhdr', '.mha', '.mhd', '.dcm', '.emb.pt', '.pt')


def parse_args(argv=None):
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
    p.add_argument('--out', required=True,
                   help='output points (.csv, .mrk.json, .fcsv); with several targets one file '
                   'per target named OUT_<target name>')
    p.add_argument('--space', default='LPS', choices=['LPS', 'RAS'],
                   help='coordinate convention of a .csv input and of every output')
    p.add_argument('--method', default='reference', choices=['reference', 'coarse_to_fine'],
                   help='reference: argmax over all voxels (SPEC 1.5); coarse_to_fine: faster '
                   'two-level search')
    p.add_argument('--stable-points', action='store_true',
                   help='stable-points structural inference (SPEC 2)')
    p.add_argument('--no-refine', action='store_true', help='no sub-voxel refinement')
    p.add_argument('--tile-size', type=int, nargs='+', default=None,
                   help='tiled embedding window (z y x voxels at 2 mm)')
    p.add_argument('--modality', choices=['CT', 'MR'], default=None,
                   help='modality of the images when their files do not say')
    p.add_argument('--device', default=None, help='cpu, cuda, cuda:1 (default: GPU if any)')
    p.add_argument('--no-progress', action='store_true', help='no progress bars')
    return p.parse_args(argv)


def _strip(name: str) -> str:
    base = osp.basename(osp.normpath(name))
    low = base.lower()
    for suf in _IMAGE_SUFFIXES:
        if low.endswith(suf):
            return base[:-len(suf)]
    return osp.splitext(base)[0]


def output_paths(out: str, targets):
    """OUT for one target; ``<OUT stem>_<target name><ext>`` for several (unique names)."""
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
    names = [_strip(t) for t in targets]
    if len(set(names)) != len(names):  # same file name in different folders
        names = [f'{n}_{i}' for i, n in enumerate(names)]
    return [f'{stem}_{n}{out[-len(ext):]}' for n in names]


def main(argv=None) -> int:
    args = parse_args(argv)
    from mmanat.utils.exceptions import MMAnatError
    try:
        return _run(args)
    except MMAnatError as err:
        print(f'error: {err}', file=sys.stderr)
        return 2


def _run(args) -> int:
    import numpy as np

    from mmanat.apis import embed, init_model, load_embeddings
    from mmanat.apis.cache import is_cache_path
    from mmanat.apis.matching import Matcher, check_query_points
    from mmanat.fileio import read_points, read_volume, write_points
    from mmanat.structures import PointSet
    from mmanat.utils.exceptions import InvalidInputError

    t_start = time.perf_counter()
    points = read_points(args.points, space=args.space)
    if points.xyz.shape[1] != 3:
        raise InvalidInputError(f'{args.points}: 3D points (x, y, z) are required.')
    outs = output_paths(args.out, args.target)
    images = [args.template] + list(args.target)
    for path in images:
        if not osp.exists(path):
            raise InvalidInputError(f'{path}: file not found (working directory '
                                    f'{os.getcwd()}).')
    need_model = not all(is_cache_path(p) for p in images)
    model = None
    if need_model:
        if args.checkpoint is None and not args.random_init:
            from mmanat.apis.model_zoo import default_checkpoint
            args.checkpoint = default_checkpoint('sam')
            print(f'[match] no --checkpoint: using the shipped {args.checkpoint}')
        if args.random_init and args.config is None:
            raise InvalidInputError('--random-init needs --config.')
        model = init_model(args.config, None if args.random_init else args.checkpoint,
                           device=args.device)
    tile = args.tile_size if args.tile_size else None
    progress = not args.no_progress

    def maps_of(path):
        if is_cache_path(path):
            return load_embeddings(path, expected_model=model, device=args.device)
        return embed(model, read_volume(path, modality=args.modality), tile_size=tile,
                     progress=progress)

    t0 = time.perf_counter()
    tpl = maps_of(args.template)
    check_query_points(points, tpl)  # fail before embedding the targets
    t_embed = time.perf_counter() - t0
    results = []
    t_match = 0.0
    for target in args.target:
        t0 = time.perf_counter()
        tgt = maps_of(target)
        t_embed += time.perf_counter() - t0
        t0 = time.perf_counter()
        res = Matcher(tpl, tgt).match(points, method=args.method, refine=not args.no_refine,
                                      stable_points=args.stable_points, progress=progress)
        t_match += time.perf_counter() - t0
        out = res.to_pointset(names=points.names)
        extra = {k: v for k, v in points.extra.items() if k not in out.extra}
        extra.update(out.extra)
        results.append(PointSet(out.xyz, names=points.names, extra=extra))
        if len(points) <= 20:
            print(f'{target}:')
            for i, name in enumerate(points.names):
                xyz = out.in_space(args.space)[i]
                ijk = ', '.join(str(int(v)) for v in res.index_rounded[i])
                print(f'  {name:>12s}  ({xyz[0]:8.2f}, {xyz[1]:8.2f}, {xyz[2]:8.2f}) mm '
                      f'{args.space}  voxel ({ijk})  score {res.scores[i]:.4f}')
        else:
            sc = res.scores
            print(f'{target}: {len(points)} points, score median {np.median(sc):.4f} '
                  f'(min {sc.min():.4f}, max {sc.max():.4f})')
    written = [write_points(ps, path, space=args.space) for ps, path in zip(results, outs)]
    for path in written:
        print(f'wrote {path}')
    print(f'timing: embed/load {t_embed:.2f} s, match {t_match:.2f} s, total '
          f'{time.perf_counter() - t_start:.2f} s ({args.method}'
          f'{", stable points" if args.stable_points else ""})')
    return 0


if __name__ == '__main__':
    sys.exit(main())
