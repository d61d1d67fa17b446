"""The checkpoints mmanat ships (``checkpoints/``) and their integrity check.

``checkpoints/model_zoo.json`` lists every shipped checkpoint by file name with its SHA-256,
size, config and task; ``docs/en/model_zoo.md`` is its human-readable card. Loading a file
whose name is listed in the ``model_zoo.json`` next to it verifies the hash first
(:func:`verify_checkpoint`, called by :func:`mmanat.utils.checkpoint.load_checkpoint_file`
for :func:`mmanat.apis.init_model`), so a truncated,
corrupted or silently replaced checkpoint fails with a message saying how to restore it,
instead of producing wrong matches. Checkpoints you train yourself are not listed and load
without a check (publish them with ``tools/publish_checkpoint.py --zoo`` to list them).

The default checkpoint of each task (``sam``, ``semantic`` = UAE-S, ``ct_mr`` = UAE-M,
``adam``, ``adam_v2``, ``sam2d`` = the 2D SAM for radiographs) is what the demos,
``tools/match.py`` and the analysis tools use when no ``--checkpoint`` is given.
"""
from __future__ import annotations

import hashlib
import json
import os
import os.path as osp
import tempfile
from typing import Dict, Optional

from ..utils.exceptions import InvalidInputError

ZOO_FILENAME = 'model_zoo.json'

#: task -> file name of its default checkpoint in ``checkpoints/``
DEFAULT_CHECKPOINTS = {
    'sam': 'sam_default.pth',
    'semantic': 'uae_s_default.pth',
    'ct_mr': 'uae_m_default.pth',
    'adam': 'adam_default.pth',
    'adam_v2': 'adam_v2_default.pth',
    'sam2d': 'sam2d_default.pth',
}


class CheckpointIntegrityError(InvalidInputError):
    """A shipped checkpoint whose bytes do not match the hash in its ``model_zoo.json``."""


def checkpoint_dir() -> str:
    """Folder of the shipped checkpoints: ``$MMANAT_CHECKPOINT_DIR`` if set, else
    ``checkpoints/`` in the current directory when it exists, else the one of the mmanat
    source tree (an editable install / git clone)."""
    env = os.environ.get('MMANAT_CHECKPOINT_DIR')
    if env:
        return env
    if osp.isdir('checkpoints') and osp.isfile(osp.join('checkpoints', ZOO_FILENAME)):
        return 'checkpoints'
    root = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    return osp.join(root, 'checkpoints')


def sha256_file(path: str, chunk: int = 1 << 20) -> str:
    """SHA-256 hex digest of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, 'rb') as fh:
        for block in iter(lambda: fh.read(chunk), b''):
            h.update(block)
    return h.hexdigest()


def load_zoo(directory: Optional[str] = None) -> Dict[str, dict]:
    """The entries of ``<directory>/model_zoo.json`` (file name -> entry); ``{}`` if none."""
    path = osp.join(checkpoint_dir() if directory is None else directory, ZOO_FILENAME)
    if not osp.isfile(path):
        return {}
    try:
        with open(path, encoding='utf-8') as fh:
            zoo = json.load(fh)
    except (OSError, ValueError) as err:
        raise InvalidInputError(f'{path}: unreadable model zoo index ({err}); restore it with '
                                f'`git checkout -- {path}`.') from None
    if not isinstance(zoo, dict) or not all(isinstance(v, dict) for v in zoo.values()):
        raise InvalidInputError(f'{path}: expected a JSON object of file name -> entry.')
    return zoo


def verify_checkpoint(path: str) -> Optional[dict]:
    """Check a checkpoint against the ``model_zoo.json`` in its folder.

    Returns:
        The zoo entry when the file is listed (and its SHA-256 matches), ``None`` when the
        folder has no zoo index or does not list the file (not a shipped checkpoint).

    Raises:
        CheckpointIntegrityError: the file is listed but its size or SHA-256 differs.
    """
    path = os.fspath(path)
    entry = load_zoo(osp.dirname(path) or '.').get(osp.basename(path))
    if entry is None:
        return None
    expected = str(entry.get('sha256', '')).lower()
    size = osp.getsize(path)
    actual = sha256_file(path)
    if actual != expected:
        want = entry.get('size_bytes')
        raise CheckpointIntegrityError(
            f'{path}: checkpoint is corrupted or was replaced: its SHA-256 is {actual} '
            f'({size} bytes) but {ZOO_FILENAME} lists {expected}'
            + (f' ({want} bytes)' if want is not None else '') + '. Restore the shipped file '
            f'with `git checkout -- {path}` (or a fresh clone). If you retrained it on purpose, '
            'publish it with `python tools/publish_checkpoint.py SRC DST --zoo ...`, which '
            'updates the index.')
    return entry


def default_checkpoint(task: str, must_exist: bool = True) -> Optional[str]:
    """Path of the shipped default checkpoint of ``task`` (see :data:`DEFAULT_CHECKPOINTS`).

    With ``must_exist=False`` returns ``None`` instead of raising when the file is missing.
    """
    if task not in DEFAULT_CHECKPOINTS:
        raise InvalidInputError(f'unknown task {task!r}; one of {sorted(DEFAULT_CHECKPOINTS)}.')
    path = osp.join(checkpoint_dir(), DEFAULT_CHECKPOINTS[task])
    if osp.isfile(path):
        return path
    if must_exist:
        raise InvalidInputError(
            f'{path}: the default {task} checkpoint is missing. It ships in the git '
            'repository (checkpoints/); use a full clone, set MMANAT_CHECKPOINT_DIR, or pass '
            '--checkpoint PATH.')
    return None


def register_checkpoint(path: str, task: str, config: str, description: str = '',
                        **extra) -> dict:
    """Add or replace ``path``'s entry in the ``model_zoo.json`` of its folder.

    The index is written to a temporary file in the same folder and renamed onto
    ``model_zoo.json``, so an interrupted write never leaves a half-written index.

    Args:
        path: the checkpoint file to list.
        task: its task (a key of :data:`DEFAULT_CHECKPOINTS` for the shipped defaults).
        config: the config it was trained with.
        description: one line for the index.
        **extra: further JSON-serialisable entry fields.

    Returns:
        The new entry (``task, config, sha256, size_bytes, description`` and ``extra``).
    """
    directory = osp.dirname(os.fspath(path)) or '.'
    zoo = load_zoo(directory)
    entry = dict(task=task, config=config, sha256=sha256_file(path),
                 size_bytes=osp.getsize(path), description=description, **extra)
    zoo[osp.basename(path)] = entry
    fd, tmp = tempfile.mkstemp(prefix='.tmp-model_zoo-', suffix='.json', dir=directory)
    try:
        with os.fdopen(fd, 'w', encoding='utf-8') as fh:
            json.dump(dict(sorted(zoo.items())), fh, indent=2)
            fh.write('\n')
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600 files; as a plain open() would
        os.replace(tmp, osp.join(directory, ZOO_FILENAME))
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise
    return entry


def resolve_checkpoint(checkpoint: Optional[str], random_init: bool = False,
                       config: Optional[str] = None, task: Optional[str] = 'sam',
                       announce: bool = True) -> Optional[str]:
    """The checkpoint a command-line tool should load (shared by ``tools/*.py``).

    ``--random-init`` (needs ``--config``) gives ``None`` (random weights); an explicit
    ``--checkpoint`` is returned as is; otherwise the shipped default of ``task`` (printed
    when ``announce``), or an error saying what to pass when there is none.
    """
    if random_init:
        if config is None:
            raise InvalidInputError('--random-init needs --config (the model to initialise '
                                    'randomly, e.g. configs/_base_/models/sam_tiny.py).')
        return None
    if checkpoint:
        return checkpoint
    if task is None:
        raise InvalidInputError('--checkpoint is required (or --random-init --config C for a '
                                'pipeline test with random weights).')
    path = default_checkpoint(task)
    if announce:
        print(f'no --checkpoint: using the shipped {task} model {path}')
    return path
