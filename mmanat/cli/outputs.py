"""Output paths of the console commands, checked while the arguments are parsed.

Every output option (``--out``, ``--out-dir``, ``--work-dir``) is declared with
``type=output_dir`` or ``type=output_file``, so that a path that cannot be written (a folder
where a file goes, a file where a folder goes, a parent that is a file or not writable) is
refused by argparse as one ``error: argument --out-dir: ...`` line, exit code 2, before any
model is loaded or any image read. The files themselves are written atomically
(:func:`mmanat.fileio.atomic_path`), so an existing output is replaced only by a complete new
one and a failed run leaves it untouched.
"""
import argparse
import os
import os.path as osp

__all__ = ['output_dir', 'output_file', 'check_writable_parent']


def check_writable_parent(path: str) -> None:
    """Raise ``argparse.ArgumentTypeError`` unless the folders above ``path`` can be created
    and written: the nearest existing one must be a writable folder."""
    parent = osp.dirname(osp.abspath(path))
    while not osp.exists(parent):
        up = osp.dirname(parent)
        if up == parent:
            break
        parent = up
    if not osp.isdir(parent):
        raise argparse.ArgumentTypeError(
            f'{path}: {parent} is a file, so no folder can be created below it; choose '
            'another path.')
    if not os.access(parent, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError(
            f'{path}: the folder {parent} is not writable; choose a writable path.')


def output_dir(path: str) -> str:
    """argparse ``type`` of an output folder: missing (it is created) or an existing folder.

    Raises:
        argparse.ArgumentTypeError: the path is an existing file, or below a file or an
            unwritable folder.
    """
    if osp.exists(path) and not osp.isdir(path):
        raise argparse.ArgumentTypeError(
            f'{path} is an existing file, not a folder; pass a folder path (created when '
            'missing) or remove the file.')
    if osp.isdir(path):
        if not os.access(path, os.W_OK | os.X_OK):
            raise argparse.ArgumentTypeError(f'{path}: the folder is not writable; choose a '
                                              'writable folder.')
        return path
    check_writable_parent(path)
    return path


def output_file(path: str) -> str:
    """argparse ``type`` of an output file: missing or an existing file (replaced atomically
    when the run succeeds), in a folder that exists or can be created.

    Raises:
        argparse.ArgumentTypeError: the path is a folder, or below a file or an unwritable
            folder.
    """
    if osp.isdir(path):
        raise argparse.ArgumentTypeError(f'{path} is a folder; pass a file name (e.g. '
                                          f'{osp.join(path, "out.csv")}).')
    check_writable_parent(path)
    return path
