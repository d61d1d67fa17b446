"""Loading a volume (and optionally its label map) into the pipeline's results dict."""
from __future__ import annotations

import os.path as osp
from typing import Optional

import numpy as np
from mmcv.transforms import BaseTransform

from mmanat.fileio.formats import filename_stem
from mmanat.registry import TRANSFORMS
from mmanat.structures.image import MedicalImage
from mmanat.utils.exceptions import InvalidInputError


@TRANSFORMS.register_module()
class LoadVolume(BaseTransform):
    """Read ``results['img_path']`` into ``results['image']`` (:class:`MedicalImage`).

    Any format :func:`mmanat.fileio.read_volume` reads (NIfTI, NRRD, MetaImage, DICOM series
    folder) and the ``.npy`` cache of ``tools/preprocess.py`` (memory-mapped, so later crops
    read only what they need). If ``results`` already holds an ``image`` (e.g. synthetic
    subjects) and no ``img_path``, the transform passes it through.

    Required keys: ``img_path`` (or ``image``).
    Optional keys: ``modality`` (overrides the reader's guess), ``label_path``.

    Added/updated keys: ``image``, ``modality`` (``'CT'``/``'MR'``/...), ``subject_id``
    (file name without extension unless given), ``label`` (when ``with_label`` and a label
    path or a cached label exists; put onto the image grid by nearest-neighbour resampling
    when its grid differs), ``img_shape`` (z, y, x).

    Args:
        with_label: load ``label_path`` (or the cached label map) when available.
        mmap: memory-map ``.npy`` caches (recommended; arrays are read-only).
        default_modality: used when neither ``results`` nor the reader knows the modality
            (the reader's intensity guess returns ``'OT'``).
    """

    def __init__(self, with_label: bool = False, mmap: bool = True,
                 default_modality: Optional[str] = None):
        self.with_label = with_label
        self.mmap = mmap
        self.default_modality = default_modality

    def _read(self, path: str, modality: Optional[str]):
        label = None
        if path.endswith('.npy'):
            from mmanat.datasets.volume_cache import load_cached_volume
            image, label = load_cached_volume(path, mmap=self.mmap, with_label=True)
            if modality is not None:
                image.modality = str(modality).upper()
        else:
            from mmanat.fileio import read_volume
            image = read_volume(path, modality=modality)
        return image, label

    def _read_label(self, path: str, image: MedicalImage) -> MedicalImage:
        if path.endswith('.npy') and not osp.isfile(path[:-len('.npy')] + '.json'):
            if not osp.isfile(path):
                raise InvalidInputError(f'{path}: label map not found; check label_path.')
            arr = np.load(path, mmap_mode='r' if self.mmap else None)
            if tuple(arr.shape) != tuple(image.shape):
                raise InvalidInputError(
                    f'{path}: label array shape {arr.shape} differs from the image '
                    f'{image.path} shape {image.shape}; a bare .npy label must share the '
                    'image grid.')
            return image.with_array(arr, modality=None, path=path, meta={})
        label, _ = self._read(path, 'OT')
        return label

    def transform(self, results: dict) -> dict:
        path = results.get('img_path')
        if path is None:
            if isinstance(results.get('image'), MedicalImage):
                image = results['image']
                results.setdefault('modality', image.modality)
                results.setdefault('img_shape', tuple(image.shape))
                return results
            raise InvalidInputError(
                'LoadVolume needs results["img_path"] (a volume file or DICOM folder); the '
                f'sample has keys {sorted(results)}.')
        modality = results.get('modality') or None
        image, cached_label = self._read(str(path), modality)
        if image.modality in (None, 'OT') and self.default_modality:
            image.modality = str(self.default_modality).upper()
        results['image'] = image
        results['modality'] = image.modality
        results.setdefault('subject_id', filename_stem(str(path)))
        results['img_shape'] = tuple(image.shape)
        if self.with_label:
            label = cached_label
            label_path = results.get('label_path')
            if label_path and (label is None or osp.abspath(str(label_path))
                               != osp.abspath(label.path or '')):
                label = self._read_label(str(label_path), image)
            if label is not None:
                if not image.same_geometry(label):
                    from mmanat.structures.resample import resample_to_reference
                    label = resample_to_reference(label, image, interpolation='nearest',
                                                  default_value=0)
                if not np.issubdtype(label.array.dtype, np.integer):
                    label = label.with_array(np.rint(label.array).astype(np.int32))
                results['label'] = label
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(with_label={self.with_label}, mmap={self.mmap}, '
                f'default_modality={self.default_modality})')
