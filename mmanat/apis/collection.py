"""Collections of embedding caches: sharding, the embeddings index, listing targets.

Embedding thousands of scans (``tools/embed.py`` over a folder or a list) runs as several
jobs: torchrun / slurm processes (rank and world size from the environment, see
:func:`shard_from_env`) and/or ``--num-parts`` jobs. Every job appends one JSON line per
image to its own part file ``<out>/embeddings_index.parts/<tag>.jsonl`` (flushed and synced
line by line: a killed job loses at most its last, incomplete line, which readers skip), and
:func:`merge_index` folds all parts into ``<out>/embeddings_index.csv`` under a file lock,
written atomically. Merging is idempotent, so every job may merge when it ends; the last
merge sees every finished part.

Index columns (:data:`INDEX_COLUMNS`): ``cache`` (path relative to the index folder),
``image`` (the source path as given), ``model_id`` (``config@sha``), ``config``,
``checkpoint``, ``sha256``, ``modality``, ``shape_zyx`` and ``spacing_xyz`` (of the original
image, ``z y x`` / ``x y z`` separated by spaces), ``dtype``, ``seconds`` (embedding time; empty
for a cache found ready), ``status`` (``embedded`` / ``cached``), ``part``, ``host``,
``written_at`` (ISO time).
"""
from __future__ import annotations

import contextlib
import csv
import datetime
import json
import os
import os.path as osp
import socket
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from ..fileio.atomic import atomic_path
from ..utils.exceptions import InvalidInputError

__all__ = ['INDEX_NAME', 'INDEX_COLUMNS', 'shard_from_env', 'shard_items', 'index_row',
           'IndexPart', 'merge_index', 'read_index', 'list_caches']

INDEX_NAME = 'embeddings_index.csv'
PARTS_DIR = 'embeddings_index.parts'
LOCK_NAME = 'embeddings_index.lock'
INDEX_COLUMNS = ('cache', 'image', 'model_id', 'config', 'checkpoint', 'sha256', 'modality',
                 'shape_zyx', 'spacing_xyz', 'dtype', 'seconds', 'status', 'part', 'host',
                 'written_at')


def shard_from_env(environ: Optional[Dict[str, str]] = None) -> Tuple[int, int]:
    """``(rank, world size)`` of this process from the launcher's environment: torchrun /
    ``torch.distributed.launch`` (``RANK``, ``WORLD_SIZE``), slurm (``SLURM_PROCID``,
    ``SLURM_NTASKS``), else ``(0, 1)``.

    Raises:
        InvalidInputError: a rank outside ``[0, world size)`` or non-integer values.
    """
    env = os.environ if environ is None else environ
    pairs = (('RANK', 'WORLD_SIZE'), ('SLURM_PROCID', 'SLURM_NTASKS'))
    for r_key, w_key in pairs:
        if r_key in env and w_key in env:
            try:
                rank, world = int(env[r_key]), int(env[w_key])
            except ValueError:
                raise InvalidInputError(f'{r_key}={env[r_key]!r}, {w_key}={env[w_key]!r}: '
                                        'not integers.') from None
            if world < 1 or not 0 <= rank < world:
                raise InvalidInputError(f'{r_key}={rank} is not in [0, {w_key}={world}).')
            return rank, world
    return 0, 1


def shard_items(items: Sequence, num_shards: int, shard_index: int) -> List:
    """Every ``num_shards``-th item starting at ``shard_index`` (a round-robin split: the
    shards differ in size by at most one and together hold every item once).

    Raises:
        InvalidInputError: ``shard_index`` outside ``[0, num_shards)``.
    """
    if int(num_shards) < 1 or not 0 <= int(shard_index) < int(num_shards):
        raise InvalidInputError(f'shard index {shard_index} is not in [0, {num_shards}).')
    return list(items)[int(shard_index)::int(num_shards)]


def _now() -> str:
    return datetime.datetime.now().isoformat(timespec='seconds')


def index_row(maps, image: str, cache: str, root: str, *, dtype: str,
              seconds: Optional[float], status: str, part: str) -> Dict[str, str]:
    """One index row for the cache ``cache`` of ``image`` (``maps``: its EmbeddingMaps)."""
    model = dict(maps.model or {})
    grid = maps.source_grid
    return {
        'cache': osp.relpath(osp.abspath(cache), osp.abspath(root)),
        'image': str(image), 'model_id': maps.model_id,
        'config': str(model.get('config') or ''),
        'checkpoint': str(model.get('checkpoint') or ''),
        'sha256': str(model.get('sha256') or ''),
        'modality': str(maps.meta.get('modality') or ''),
        'shape_zyx': ' '.join(str(int(v)) for v in grid.shape),
        'spacing_xyz': ' '.join(f'{float(v):.6g}' for v in grid.spacing),
        'dtype': dtype, 'seconds': '' if seconds is None else f'{seconds:.3f}',
        'status': status, 'part': part, 'host': socket.gethostname(), 'written_at': _now()}


class IndexPart:
    """The append-only part file of one job (:data:`PARTS_DIR` ``/<tag>.jsonl``).

    Args:
        root: the folder of the caches and of the index.
        tag: this job's name, unique among the jobs writing to ``root`` (e.g.
            ``'part0-of-1_rank1-of-2'``).
    """

    def __init__(self, root: str, tag: str):
        self.root = osp.abspath(root)
        self.path = osp.join(self.root, PARTS_DIR, f'{tag}.jsonl')
        os.makedirs(osp.dirname(self.path), exist_ok=True)

    def add(self, row: Dict[str, str]) -> None:
        """Append one row (one JSON line, flushed and synced)."""
        with open(self.path, 'a', encoding='utf-8') as fh:
            fh.write(json.dumps(row, sort_keys=True) + '\n')
            fh.flush()
            os.fsync(fh.fileno())


def _read_part(path: str) -> Iterable[Dict[str, str]]:
    with open(path, 'r', encoding='utf-8', errors='replace') as fh:
        for line in fh:
            try:
                row = json.loads(line)
            except ValueError:  # the last line of a killed job
                continue
            if isinstance(row, dict) and row.get('cache'):
                yield row


@contextlib.contextmanager
def _locked(path: str):
    """An exclusive ``flock`` on ``path`` (a no-op where ``fcntl`` is missing)."""
    try:
        import fcntl
    except ImportError:  # Windows
        yield
        return
    with open(path, 'a') as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def read_index(path: str) -> List[Dict[str, str]]:
    """The rows of an index CSV (:data:`INDEX_COLUMNS`) or of the index in a folder.

    Raises:
        InvalidInputError: no such file, or a CSV without a ``cache`` column.
    """
    path = os.fspath(path)
    if osp.isdir(path):
        path = osp.join(path, INDEX_NAME)
    if not osp.isfile(path):
        raise InvalidInputError(f'{path}: embeddings index not found; tools/embed.py writes '
                                f'{INDEX_NAME} into its --out-dir.')
    with open(path, 'r', encoding='utf-8', newline='') as fh:
        reader = csv.DictReader(fh)
        if 'cache' not in (reader.fieldnames or []):
            raise InvalidInputError(f'{path}: not an embeddings index (no "cache" column).')
        return [dict(r) for r in reader]


def merge_index(root: str) -> str:
    """Fold the part files of ``root`` (and its current index) into ``root/``
    :data:`INDEX_NAME`: one row per cache (the newest), rows of caches that no longer exist
    dropped, sorted by cache path. Runs under an exclusive lock and writes atomically.

    Returns:
        the index path.
    """
    root = osp.abspath(root)
    index = osp.join(root, INDEX_NAME)
    with _locked(osp.join(root, LOCK_NAME)):
        rows: Dict[str, Dict[str, str]] = {}
        if osp.isfile(index):
            for r in read_index(index):
                rows[r['cache']] = r
        parts = osp.join(root, PARTS_DIR)
        names = sorted(os.listdir(parts)) if osp.isdir(parts) else []
        for name in names:
            if name.endswith('.jsonl'):
                for r in _read_part(osp.join(parts, name)):
                    old = rows.get(r['cache'])
                    if old is None or str(r.get('written_at', '')) >= \
                            str(old.get('written_at', '')):
                        rows[r['cache']] = r
        keep = [rows[k] for k in sorted(rows) if osp.isfile(osp.join(root, k))]
        with atomic_path(index) as tmp, open(tmp, 'w', encoding='utf-8', newline='') as fh:
            w = csv.DictWriter(fh, fieldnames=list(INDEX_COLUMNS), extrasaction='ignore')
            w.writeheader()
            for r in keep:
                w.writerow({c: r.get(c, '') for c in INDEX_COLUMNS})
    return index


def list_caches(targets_dir: Optional[str] = None, index: Optional[str] = None,
                model_id: Optional[str] = None) -> List[str]:
    """Cache files of a collection: the rows of ``index`` (a CSV or a folder holding
    :data:`INDEX_NAME`; only those of ``model_id`` when given: ``config@sha`` prefix match on
    the SHA) or every ``*.emb.pt`` below ``targets_dir`` (sorted).

    Raises:
        InvalidInputError: neither given, a missing folder, no cache found.
    """
    from .cache import CACHE_SUFFIX
    found: List[str] = []
    if index:
        path = osp.join(index, INDEX_NAME) if osp.isdir(index) else index
        root = osp.dirname(osp.abspath(path))
        for r in read_index(path):
            if model_id and not _same_id(r.get('model_id', ''), model_id):
                continue
            found.append(osp.join(root, r['cache']))
    elif targets_dir:
        if not osp.isdir(targets_dir):
            raise InvalidInputError(f'{targets_dir}: no such folder (working directory '
                                    f'{os.getcwd()}).')
        for dirpath, dirnames, filenames in os.walk(targets_dir):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith('.'))
            found += [osp.join(dirpath, f) for f in sorted(filenames)
                      if f.endswith(CACHE_SUFFIX) and not f.startswith('.tmp-')]
    else:
        raise InvalidInputError('give a folder of caches or an embeddings index.')
    if not found:
        where = index or targets_dir
        raise InvalidInputError(f'{where}: no embedding cache found'
                                f'{" for model " + model_id if model_id else ""}; embed the '
                                'images with tools/embed.py first.')
    return sorted(found)


def _same_id(have: str, want: str) -> bool:
    hc, _, hs = have.partition('@')
    wc, _, ws = want.partition('@')
    if hs and ws:
        return hs.startswith(ws) or ws.startswith(hs)
    return hc == wc
