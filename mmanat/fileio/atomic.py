"""Atomic file writing: write to a temporary name in the same folder, then rename.

A crash or an exception while writing never leaves a half-written file at the final path.
"""
import contextlib
import os
import os.path as osp
import tempfile


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
    base = osp.basename(path)
    # keep the full (possibly double) extension so writers pick the right format
    ext = base[base.index('.'):] if '.' in base else ''
    fd, tmp = tempfile.mkstemp(prefix='.tmp-' + base.split('.')[0] + '-', suffix=ext, dir=folder)
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
