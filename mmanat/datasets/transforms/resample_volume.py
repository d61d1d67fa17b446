"""Online resampling of a whole volume (and its label map) to a fixed spacing."""
from __future__ import annotations

from typing import Sequence, Union

from mmcv.transforms import BaseTransform

from mmanat.registry import TRANSFORMS
from mmanat.structures.image import MedicalImage
from mmanat.utils.exceptions import InvalidInputError


@TRANSFORMS.register_module()
class ResampleVolume(BaseTransform):
    """Resample ``results['image']`` to ``spacing`` mm (linear) and ``results['label']``
    (when present) onto the resampled image grid (nearest), keeping world coordinates.

    The SAM two-view crop resamples the original volume directly and does not need this;
    it serves pipelines that work on a fixed 2 mm grid (e.g. whole-volume inference, UAE-S)
    when no ``tools/preprocess.py`` cache is used.

    Args:
        spacing: target spacing in mm, one value or ITK order ``(x, y, z)``.
        interpolation: for the image: ``'linear'`` or ``'bspline'``.
    """

    def __init__(self, spacing: Union[float, Sequence[float]] = 2.0,
                 interpolation: str = 'linear'):
        self.spacing = spacing
        self.interpolation = interpolation

    def transform(self, results: dict) -> dict:
        from mmanat.structures.resample import resample_to_reference, resample_to_spacing
        image = results.get('image')
        if not isinstance(image, MedicalImage):
            raise InvalidInputError('ResampleVolume needs results["image"] (a MedicalImage); '
                                    'put LoadVolume first.')
        out = resample_to_spacing(image, self.spacing, self.interpolation)
        results['image'] = out
        results['img_shape'] = tuple(out.shape)
        label = results.get('label')
        if isinstance(label, MedicalImage):
            results['label'] = resample_to_reference(label, out, interpolation='nearest',
                                                     default_value=0)
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(spacing={self.spacing}, '
                f'interpolation={self.interpolation!r})')
