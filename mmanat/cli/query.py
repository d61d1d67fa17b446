"""Answer one query (template points) against many cached targets: a collection embedded by
``tools/embed.py``.

``mmanat-query`` (same as ``python tools/query.py``). Examples::

    mmanat-embed data/cts/ --out-dir emb --index         # once: caches + embeddings_index.csv
    mmanat-query --template emb/case001.emb.pt --points landmarks.csv --targets-dir emb \\
        --out found.csv
    # only the caches of the template's model, as listed in the index
    mmanat-query --template emb/case001.emb.pt --points p.csv --index emb/embeddings_index.csv \\
        --out found.csv --method coarse_to_fine

Every target is loaded (checked to come from the template's model), matched and released in
turn, so memory stays that of one pair. The output is ONE table: ``target`` (the cache path),
``name``, ``x, y, z`` (world mm in --space), ``score``, ``i, j, k`` (rounded voxel indices of
the target's original image), ``quality`` (``ok`` / ``low_score`` below --min-score), written
atomically at the end. The template itself is skipped. A target that cannot be read or comes
from another model is reported and skipped; the exit code is then 1.
"""
import argparse
import csv
import os.path as osp
import sys
import time
from typing import List, Optional, Sequence

from .outputs import output_file
from .runner import command


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """The options of ``mmanat-query``."""
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0].replace('\n', ' '),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--template', required=True, help='template embedding cache (.emb.pt)')
    p.add_argument('--points', required=True, help='query points (.csv, .mrk.json, .fcsv)')
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument('--targets-dir', help='folder of target caches (*.emb.pt, recursive)')
    src.add_argument('--index', help='embeddings_index.csv of tools/embed.py (or its folder); '
                     "only the rows of the template's model are used")
    p.add_argument('--out', required=True, type=output_file, help='output table (.csv)')
    p.add_argument('--space', default='LPS', choices=['LPS', 'RAS'],
                   help='convention of a .csv input and of the output')
    p.add_argument('--method', default=None, choices=['consensus', 'reference',
                                                      'coarse_to_fine'],
                   help='matching method (default: that of mmanat.apis.match)')
    p.add_argument('--min-score', type=float, default=0.3,
                   help='matches scoring below this get quality "low_score"')
    p.add_argument('--device', default=None, help='cpu, cuda, cuda:1 (default: CPU)')
    p.add_argument('--no-progress', action='store_true', help='no progress bar')
    return p.parse_args(argv)


@command
def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry of ``mmanat-query``: parse, then :func:`query_collection`."""
    args = parse_args(argv)
    _, failed = query_collection(args.template, args.points, args.out,
                                 targets_dir=args.targets_dir, index=args.index,
                                 space=args.space, method=args.method,
                                 min_score=args.min_score, device=args.device,
                                 progress=not args.no_progress)
    return 1 if failed else 0


def query_collection(template: str, points_file: str, out: str, *,
                     targets_dir: Optional[str] = None, index: Optional[str] = None,
                     space: str = 'LPS', method: Optional[str] = None,
                     min_score: float = 0.3, device: Optional[str] = None,
                     progress: bool = True):
    """Match the points of ``points_file`` (in the template cache) in every cached target.

    Args:
        template (str): the template's ``.emb.pt`` cache.
        points_file (str): query points (.csv world mm in ``space``, .mrk.json, .fcsv).
        out (str): the output table (.csv).
        targets_dir (str, optional): folder of target caches.
        index (str, optional): an embeddings index (instead of ``targets_dir``).
        space (str): 'LPS' or 'RAS'.
        method (str, optional): matching method of :meth:`mmanat.apis.Matcher.match`.
        min_score (float): the ``quality`` threshold.
        device (str, optional): torch device.
        progress (bool): a progress bar.

    Returns:
        tuple: ``(output path, [(target, error message), ...])``.

    Raises:
        InvalidInputError: a template that is not a cache, points outside it, no target.
    """
    from tqdm import tqdm

    from mmanat.apis import load_embeddings
    from mmanat.apis.cache import is_cache_path
    from mmanat.apis.collection import list_caches
    from mmanat.apis.matching import Matcher, check_query_points
    from mmanat.fileio import read_points
    from mmanat.fileio.atomic import atomic_path
    from mmanat.structures import PointSet
    from mmanat.utils.exceptions import InvalidInputError, MMAnatError

    if not out.lower().endswith('.csv'):
        raise InvalidInputError(f'--out {out}: the query table is a .csv file.')
    if not is_cache_path(template):
        raise InvalidInputError(f'--template {template}: give the template\'s embedding cache '
                                '(.emb.pt; make it with tools/embed.py).')
    t_start = time.perf_counter()
    tpl = load_embeddings(template, device=device)
    points = read_points(points_file, space=space, ndim=3, min_points=1)
    check_query_points(points, tpl)
    targets = list_caches(targets_dir=targets_dir, index=index,
                          model_id=tpl.model_id if index else None)
    me = osp.realpath(template)
    targets = [t for t in targets if osp.realpath(t) != me]
    if not targets:
        raise InvalidInputError('no target cache besides the template.')
    failed: List = []
    n_rows, n_low = 0, 0
    with atomic_path(out) as tmp, open(tmp, 'w', encoding='utf-8', newline='') as fh:
        w = csv.writer(fh)
        if space != 'LPS':
            fh.write(f'# space = {space}\n')
        w.writerow(['target', 'name', 'x', 'y', 'z', 'score', 'i', 'j', 'k', 'quality'])
        for path in tqdm(targets, desc='query', unit='target', disable=not progress):
            try:
                tgt = load_embeddings(path, expected_model=tpl, device=device)
                res = Matcher(tpl, tgt).match(points, method=method)
            except MMAnatError as err:
                failed.append((path, str(err)))
                tqdm.write(f'error: {path}: {err}', file=sys.stderr)
                continue
            xyz = PointSet(res.points).in_space(space)
            for n, p, s, ijk in zip(points.names, xyz, res.scores, res.index_rounded):
                low = float(s) < min_score
                n_low += low
                w.writerow([path, n] + [f'{v:.4f}' for v in p] + [f'{float(s):.4f}']
                           + [int(v) for v in ijk] + ['low_score' if low else 'ok'])
                n_rows += 1
            del tgt, res
    print(f'{len(targets) - len(failed)} of {len(targets)} targets matched ({len(points)} '
          f'points each, {n_rows} rows, {n_low} below --min-score {min_score:g}) in '
          f'{time.perf_counter() - t_start:.1f} s -> {osp.abspath(out)}')
    for path, msg in failed:
        print(f'failed: {path}: {msg}', file=sys.stderr)
    return osp.abspath(out), failed
