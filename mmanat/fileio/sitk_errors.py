"""SimpleITK exceptions turned into one-line :class:`InvalidInputError` messages that say what
is wrong with the file and how to fix it."""
from __future__ import annotations

from ..utils.exceptions import InvalidInputError

__all__ = ['sitk_message', 'read_error']


def sitk_message(err: Exception) -> str:
    """The ITK error text of a SimpleITK exception, on one line, without source locations.

    Args:
        err: the exception SimpleITK raised (usually a ``RuntimeError``).

    Returns:
        At most 400 characters; ``repr(err)`` when the exception carries no text.
    """
    text = str(err).strip()
    for marker in ('ITK ERROR:', 'itk::ERROR:', 'sitk::ERROR:'):
        if marker in text:
            text = text.split(marker, 1)[1]
    if text.startswith('Exception thrown in SimpleITK'):
        text = text.split('\n', 1)[-1]
    text = ' '.join(ln.strip() for ln in text.splitlines() if ln.strip())
    # drop the "Image(0x55...): " / "NiftiImageIO(0x...): " object prefix
    head, sep, tail = text.partition('): ')
    if sep and '(0x' in head and ' ' not in head.strip():
        text = tail
    return text[:400] or repr(err)


def read_error(path: str, fmt: str, err: Exception) -> InvalidInputError:
    """An :class:`InvalidInputError` explaining why SimpleITK could not read ``path``.

    Args:
        path: the file (or series) that failed, as the user named it.
        fmt: the format it was read as (e.g. ``'Nifti'``, ``'a DICOM series'``).
        err: the SimpleITK exception.

    Returns:
        The error to raise: the file, the cause (invalid space directions, direction matrix,
        spacing, or a truncated/corrupt file) and the fix.
    """
    msg = sitk_message(err)
    low = msg.lower()
    if 'space directions' in low:
        what = 'its space directions (voxel spacing times orientation) are invalid'
        todo = ('fix the "space directions" line of the header: finite vectors, non-zero '
                'length, not parallel')
    elif 'direction' in low:
        what = 'its direction (orientation) matrix is singular or invalid'
        todo = ('fix the orientation in the header (an orthonormal direction), e.g. with '
                'SimpleITK SetDirection or 3D Slicer')
    elif 'spacing' in low:
        what = 'its voxel spacing is zero, negative or not a number'
        todo = 'fix the spacing in the header (every value finite and > 0), e.g. with SetSpacing'
    else:
        what = ('it is truncated or corrupt, or its extension does not match its content')
        todo = 're-export or re-download it'
    return InvalidInputError(f'{path}: cannot read the file as {fmt}: {what} ({msg}); {todo}.')
