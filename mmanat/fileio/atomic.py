"""Atomic file writing: write to a temporary name in the same folder, then rename.

A crash or an exception while writing never leaves a half-written file at the final path.
A process that is killed (SIGKILL, power loss) cannot remove its temporary file; the first
atomic write of any later process into that folder does (:func:`remove_stale_temporaries`).

Temporary names are ``.tmp-p<pid>h<host>-<stem>-<random><ext>``: a file whose process no
longer runs on this host is stale; so is one of another host, or of an older mmanat version
(``.tmp-<stem>-<random>``, no process id), once it is older than :data:`STALE_AGE_S`.
"""
import contextlib
import os
import os.path as osp
import re
import shutil
import socket
import tempfile
import time
import zlib

#: age (seconds) after which a temporary file whose writer cannot be checked is stale
STALE_AGE_S = 3600.0
_HOST = format(zlib.crc32(socket.gethostname().encode()) & 0xffffff, '06x')
_OWNED = re.compile(r'^\.tmp-p(\d+)h([0-9a-f]{6})-')
_CLEANED: set = set()


def temp_prefix(stem: str) -> str:
    """The prefix of this process's temporary files for a destination named ``stem``."""
    return f'.tmp-p{os.getpid()}h{_HOST}-{stem}-'


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def remove_stale_temporaries(folder: str, max_age_s: float = STALE_AGE_S) -> list:
    """Remove the temporary files (and folders) that killed writers left in ``folder``.

    Args:
        folder: the folder to clean (not recursive).
        max_age_s: age after which a temporary of another host or of an older mmanat version
            (no process id in its name) counts as stale.

    Returns:
        list[str]: the removed paths.
    """
    removed = []
    try:
        names = [n for n in os.listdir(folder) if n.startswith('.tmp-')]
    except OSError:
        return removed
    now = time.time()
    for name in names:
        path = osp.join(folder, name)
        m = _OWNED.match(name)
        try:
            old = now - os.lstat(path).st_mtime > max_age_s
        except OSError:
            continue
        if m:
            pid, host = int(m.group(1)), m.group(2)
            stale = (not _pid_alive(pid)) if host == _HOST else old
            if host == _HOST and pid == os.getpid():
                stale = False
        else:
            stale = old
        if not stale:
            continue
        with contextlib.suppress(OSError):
            if osp.isdir(path) and not osp.islink(path):
                shutil.rmtree(path)
            else:
                os.remove(path)
            removed.append(path)
    return removed


def clean_folder_once(folder: str) -> None:
    """:func:`remove_stale_temporaries` of ``folder``, once per process and folder."""
    key = osp.abspath(folder)
    if key not in _CLEANED:
        _CLEANED.add(key)
        remove_stale_temporaries(key)


@contextlib.contextmanager
def atomic_path(path: str):
    """Yield a temporary path next to ``path`` (same extension); rename it onto ``path`` when
    the block succeeds, delete it when the block raises.

    Example::

        with atomic_path('out/ct.nii.gz') as tmp:
            sitk.WriteImage(img, tmp)
    """
    path = osp.abspath(path)
    folder = osp.dirname(path)
    os.makedirs(folder, exist_ok=True)
    clean_folder_once(folder)
    base = osp.basename(path)
    # keep the full (possibly double) extension so writers pick the right format
    ext = base[base.index('.'):] if '.' in base else ''
    fd, tmp = tempfile.mkstemp(prefix=temp_prefix(base.split('.')[0]), suffix=ext, dir=folder)
    os.close(fd)
    # mkstemp creates 0600 files; give the result the permissions a plain open() would
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise
