"""The input preparation shared by the registration baselines (SimpleITK and ANTs)."""
from typing import Optional

import numpy as np

from ..structures.image import MedicalImage
from ..utils.exceptions import InvalidInputError

__all__ = ['prepare_for_registration']


def prepare_for_registration(image: MedicalImage, spacing: Optional[float],
                             engine: str = 'SimpleITK') -> MedicalImage:
    """``image`` as float32 at ``spacing`` mm, intensities clipped to its 0.5-99.5 percentiles.

    Clipping keeps a mutual-information histogram from being squeezed by a few outliers
    (metal, air outside the scanner); SimpleITK and ANTs get the same input this way.

    Args:
        image: a 3D volume or a 2D image (radiograph).
        spacing: isotropic spacing (mm) to resample to; ``None`` keeps the grid (also when
            the spacing is already within 5 %).
        engine: the name used in the error message.

    Returns:
        The prepared image (same world geometry, possibly another grid).

    Raises:
        InvalidInputError: the image is neither 3D nor 2D.
    """
    from ..structures.resample import resample_to_spacing
    if image.ndim not in (2, 3):
        raise InvalidInputError(
            f'{image.path or "<in-memory image>"}: {engine} registration needs 3D volumes or '
            f'2D images, got {image.ndim} dimensions.')
    img = image
    if spacing is not None and not np.allclose(image.spacing, spacing, rtol=0.05):
        img = resample_to_spacing(image.with_array(image.array.astype(np.float32)), spacing)
    arr = img.array.astype(np.float32)
    lo, hi = np.percentile(arr, [0.5, 99.5])
    if hi <= lo:
        hi = lo + 1.0
    return img.with_array(np.clip(arr, lo, hi))
