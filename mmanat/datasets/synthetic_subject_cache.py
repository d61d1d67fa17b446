"""A disk cache of rendered synthetic subjects (items of :class:`SyntheticSubjectDataset`).

Generating and rendering one 2 mm synthetic torso costs about a second of CPU, more than a
whole training step of SAM-tiny, and the dataset asks for the same 1000 subjects again and
again. The cache stores each rendered item once and serves it afterwards from memory-mapped
``.npy`` files: only the blocks a crop touches are read, and the page cache shares them
between dataloader workers.

Layout: ``<cache_dir>/<key>/`` with ``item.pkl`` (every small field of the results dict) and
one ``<field>.npy`` per image array (``image``, ``label``, ``pair_image``). The key is a hash
of everything the item depends on: the seed, the generator and renderer options, the chosen
modality and MR preset, and :func:`generator_version` (a hash of the source code of
``mmanat.datasets.synthetic``), so changing the generator invalidates old entries instead of
serving stale subjects. Entries are written to a temporary directory and renamed into place,
so concurrent dataloader workers never read a partial entry.

Cached arrays are loaded with ``mmap_mode='c'`` (copy-on-write): a transform that writes into
an image changes its private copy only, never the cache.
"""
from __future__ import annotations

import hashlib
import json
import os
import os.path as osp
import pickle
import shutil
import tempfile
from functools import lru_cache
from typing import Any, Dict, Optional

import numpy as np

from ..structures.image import MedicalImage
from ..utils.exceptions import InvalidInputError

#: bump when the on-disk layout of an entry changes
CACHE_FORMAT = 1
_ARRAY_FIELDS = ('image', 'label', 'pair_image')


@lru_cache(maxsize=1)
def generator_version() -> str:
    """SHA-1 (16 hex digits) of the source files of ``mmanat.datasets.synthetic``.

    Any edit of the generator or the renderers gives a new version, hence new cache keys.
    """
    root = osp.join(osp.dirname(osp.abspath(__file__)), 'synthetic')
    h = hashlib.sha1()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            if name.endswith('.py'):
                path = osp.join(dirpath, name)
                h.update(osp.relpath(path, root).encode())
                with open(path, 'rb') as f:
                    h.update(f.read())
    return h.hexdigest()[:16]


def cache_key(params: Dict[str, Any]) -> str:
    """Hash (24 hex digits) of ``params`` (JSON-serialisable) plus the generator version
    and the cache format."""
    blob = json.dumps(dict(params, generator=generator_version(), format=CACHE_FORMAT),
                      sort_keys=True, default=repr)
    return hashlib.sha1(blob.encode()).hexdigest()[:24]


class SyntheticSubjectCache:
    """Store and load rendered synthetic items by key (see the module docstring).

    Args:
        cache_dir: directory of the entries (created on first write).
    """

    def __init__(self, cache_dir: str):
        if not cache_dir:
            raise InvalidInputError('SyntheticSubjectCache: cache_dir must be a directory path')
        self.cache_dir = str(cache_dir)

    def path(self, key: str) -> str:
        """Directory of the entry ``key``."""
        return osp.join(self.cache_dir, key)

    def load(self, key: str) -> Optional[dict]:
        """The cached results dict of ``key``, or ``None`` on a miss (or a broken entry)."""
        entry = self.path(key)
        meta_path = osp.join(entry, 'item.pkl')
        if not osp.isfile(meta_path):
            return None
        try:
            with open(meta_path, 'rb') as f:
                results = pickle.load(f)
            for name in _ARRAY_FIELDS:
                if name in results:
                    results[name].array = np.load(osp.join(entry, f'{name}.npy'),
                                                  mmap_mode='c')
        except (OSError, EOFError, pickle.UnpicklingError, ValueError):
            return None  # a damaged entry is regenerated (and rewritten) by the caller
        return results

    def store(self, key: str, results: dict) -> None:
        """Write ``results`` (a dataset item before the pipeline) under ``key``.

        Image fields (:class:`MedicalImage`) go to ``.npy`` files, the rest to a pickle.
        A concurrent writer of the same key wins silently (same content by construction).
        """
        entry = self.path(key)
        if osp.isdir(entry):
            return
        os.makedirs(self.cache_dir, exist_ok=True)
        tmp = tempfile.mkdtemp(prefix=f'.{key}.', dir=self.cache_dir)
        try:
            small = dict(results)
            for name in _ARRAY_FIELDS:
                img = small.get(name)
                if not isinstance(img, MedicalImage):
                    continue
                np.save(osp.join(tmp, f'{name}.npy'), np.ascontiguousarray(img.array))
                # pickle the geometry without the voxels; load() puts the memmap back
                shell = object.__new__(MedicalImage)
                shell.__dict__.update(img.__dict__)
                shell.array = None
                small[name] = shell
            with open(osp.join(tmp, 'item.pkl'), 'wb') as f:
                pickle.dump(small, f, protocol=pickle.HIGHEST_PROTOCOL)
            try:
                os.rename(tmp, entry)
            except OSError:  # another worker stored it first
                pass
        finally:
            if osp.isdir(tmp):
                shutil.rmtree(tmp, ignore_errors=True)
