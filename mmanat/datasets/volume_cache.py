"""Training-ready volume cache written by ``tools/preprocess.py``.

One cached volume is two files side by side:

* ``<key>.npy``: the voxel array in numpy order ``(z, y, x)`` (``int16`` for CT in HU, for
  integer MR and label maps when they fit, else ``float32``), loadable with
  ``np.load(mmap_mode='r')`` so that a random crop reads only the voxels it needs;
* ``<key>.json``: its geometry (``origin``, ``spacing``, ``direction`` in ITK order, world LPS
  mm), ``shape``, ``dtype``, ``modality``, the ``source`` file, optional ``label`` (file name
  of a label map cached the same way, same grid) and ``intensity_window`` (MR: the 0.2/99.8
  percentiles of the whole volume, so views can be normalised consistently). The JSON is
  written last: its presence with ``"complete": true`` marks the entry as finished.
"""
from __future__ import annotations

import json
import os
import os.path as osp
from typing import Any, Dict, Optional

import numpy as np

from mmanat.fileio.atomic import atomic_path
from mmanat.structures.image import MedicalImage
from mmanat.utils.exceptions import InvalidInputError

CACHE_VERSION = 1

__all__ = ['CACHE_VERSION', 'compact_dtype', 'save_cached_volume', 'load_cached_volume',
           'read_cache_meta', 'is_complete_cache', 'preprocess_volume']


def compact_dtype(array: np.ndarray) -> np.dtype:
    """``int16`` when every value is an integer within the int16 range, else ``float32``."""
    arr = np.asarray(array)
    if arr.size == 0:
        return np.dtype(np.int16)
    lo, hi = float(arr.min()), float(arr.max())
    if lo < np.iinfo(np.int16).min or hi > np.iinfo(np.int16).max:
        return np.dtype(np.float32)
    if np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.bool_):
        return np.dtype(np.int16)
    if np.all(np.equal(np.mod(arr, 1), 0)):
        return np.dtype(np.int16)
    return np.dtype(np.float32)


def _save_npy(array: np.ndarray, path: str) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, 'wb') as f:
            np.save(f, np.ascontiguousarray(array))


def save_cached_volume(image: MedicalImage, npy_path: str, dtype=None,
                       label: Optional[MedicalImage] = None,
                       extra: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """Write ``image`` (and an optional label map on the same grid) to the cache.

    Args:
        image: the volume (any geometry).
        npy_path: destination ``<key>.npy``; the sidecar is ``<key>.json``, the label
            ``<key>_label.npy``.
        dtype: storage dtype; ``None`` picks :func:`compact_dtype`. CT is rounded to int16 HU.
        label: optional label map with exactly the image's grid.
        extra: further JSON-serialisable fields for the sidecar.

    Returns:
        The sidecar dict that was written.
    """
    if not npy_path.endswith('.npy'):
        raise InvalidInputError(f'cache path {npy_path} must end with .npy.')
    arr = image.array
    if dtype is None:
        dtype = np.int16 if image.modality == 'CT' else compact_dtype(arr)
    dtype = np.dtype(dtype)
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        arr = np.clip(np.rint(arr), info.min, info.max)
    _save_npy(arr.astype(dtype, copy=False), npy_path)
    key = osp.basename(npy_path)[:-len('.npy')]
    meta: Dict[str, Any] = dict(
        version=CACHE_VERSION,
        shape=[int(v) for v in image.shape],
        dtype=dtype.name,
        origin=[float(v) for v in image.origin],
        spacing=[float(v) for v in image.spacing],
        direction=[float(v) for v in image.direction.reshape(-1)],
        modality=image.modality,
        label=None)
    if label is not None:
        if not image.same_geometry(label):
            raise InvalidInputError(
                f'{label.path or "label"}: label map grid {label.shape} differs from the '
                f'image grid {image.shape}; resample it (nearest) onto the image first.')
        label_name = key + '_label.npy'
        _save_npy(label.array.astype(compact_dtype(label.array), copy=False),
                  osp.join(osp.dirname(npy_path), label_name))
        meta['label'] = label_name
    meta.update(extra or {})
    meta['complete'] = True
    with atomic_path(npy_path[:-len('.npy')] + '.json') as tmp:
        with open(tmp, 'w') as f:
            json.dump(meta, f, indent=1)
    return meta


def read_cache_meta(npy_path: str) -> Dict[str, Any]:
    """Read the JSON sidecar of a cached ``.npy`` volume (InvalidInputError if unusable)."""
    json_path = npy_path[:-len('.npy')] + '.json' if npy_path.endswith('.npy') else npy_path
    if not osp.isfile(json_path):
        raise InvalidInputError(
            f'{npy_path}: cached volume has no geometry sidecar {json_path}; re-run '
            'tools/preprocess.py on its source to rebuild the cache entry.')
    try:
        with open(json_path) as f:
            meta = json.load(f)
    except (OSError, ValueError) as err:
        raise InvalidInputError(f'{json_path}: unreadable cache sidecar ({err}); delete it and '
                                're-run tools/preprocess.py.') from err
    return meta


def is_complete_cache(npy_path: str) -> bool:
    """True when ``npy_path`` and its sidecar exist, the sidecar is marked complete and the
    stored array (and label, if any) has the recorded shape."""
    if not (osp.isfile(npy_path) and osp.isfile(npy_path[:-len('.npy')] + '.json')):
        return False
    try:
        meta = read_cache_meta(npy_path)
        if not meta.get('complete') or meta.get('version') != CACHE_VERSION:
            return False
        arrays = [npy_path]
        if meta.get('label'):
            arrays.append(osp.join(osp.dirname(npy_path), meta['label']))
        for p in arrays:
            if tuple(np.load(p, mmap_mode='r').shape) != tuple(meta['shape']):
                return False
    except (InvalidInputError, OSError, ValueError, KeyError):
        return False
    return True


def load_cached_volume(npy_path: str, mmap: bool = True, with_label: bool = False):
    """Load a cached volume as a :class:`MedicalImage` whose array is memory-mapped.

    Args:
        npy_path: ``<key>.npy`` written by :func:`save_cached_volume`.
        mmap: memory-map the array (read-only) instead of reading it whole.
        with_label: also return the cached label map (``None`` when there is none).

    Returns:
        ``image`` or ``(image, label)``; ``image.meta`` holds the sidecar fields.
    """
    npy_path = os.fspath(npy_path)
    if not osp.isfile(npy_path):
        raise InvalidInputError(f'{npy_path}: cached volume not found; check the path or '
                                're-run tools/preprocess.py.')
    meta = read_cache_meta(npy_path)
    try:
        arr = np.load(npy_path, mmap_mode='r' if mmap else None)
    except (OSError, ValueError) as err:
        raise InvalidInputError(f'{npy_path}: unreadable cached array ({err}); delete it and '
                                're-run tools/preprocess.py.') from err
    if tuple(arr.shape) != tuple(meta.get('shape', ())):
        raise InvalidInputError(
            f'{npy_path}: array shape {arr.shape} does not match its sidecar '
            f'{meta.get("shape")}; the cache entry is stale, re-run tools/preprocess.py.')
    image = MedicalImage(arr, spacing=meta['spacing'], origin=meta['origin'],
                         direction=meta['direction'], modality=meta.get('modality'),
                         path=npy_path, meta=dict(meta, format='mmanat-cache'))
    if not with_label:
        return image
    label = None
    if meta.get('label'):
        lab_path = osp.join(osp.dirname(npy_path), meta['label'])
        lab = np.load(lab_path, mmap_mode='r' if mmap else None)
        label = image.with_array(lab, modality=None, path=lab_path, meta={})
    return image, label


def preprocess_volume(src_path: str, npy_path: str, spacing: float = 2.0,
                      modality: Optional[str] = None, label_path: Optional[str] = None,
                      body_crop: bool = True, body_margin: int = 2,
                      mask_body: bool = False) -> Dict[str, Any]:
    """Turn one volume into a cache entry (what ``tools/preprocess.py`` does per volume).

    Steps: read (any format :func:`mmanat.fileio.read_volume` reads), reorient to LPS
    (permute/flip only, no interpolation), resample to ``spacing`` mm (linear; the label
    map nearest), crop to the body box (CT: voxels > -500 HU; MR: Otsu) plus
    ``body_margin`` voxels, optionally set everything outside the body mask to air
    (``mask_body``: removes the CT table), store as ``.npy`` + JSON (:func:`save_cached_volume`)
    with the MR percentile window, the minimum and the source path in the sidecar.

    Returns:
        The sidecar dict.

    Raises:
        InvalidInputError (or whatever the reader raises) for unreadable input.
    """
    from mmanat.structures.body import body_bbox, body_mask
    from mmanat.datasets.transforms.intensity import MR_PERCENTILES
    from mmanat.fileio import read_volume
    from mmanat.structures.geometry import crop_image
    from mmanat.structures.resample import (reorient, resample_to_reference,
                                            resample_to_spacing)

    image = read_volume(src_path, modality=modality)
    if image.modality not in ('CT', 'MR'):
        raise InvalidInputError(
            f'{src_path}: modality {image.modality!r} (guessed from the intensities) is '
            'neither CT nor MR; give it explicitly (--modality, or a "modality" column).')
    image = reorient(image, 'LPS')
    air = -1024.0 if image.modality == 'CT' else float(np.min(image.array))
    image = resample_to_spacing(image, spacing, 'linear', default_value=air)
    label = None
    if label_path:
        label = read_volume(label_path, modality='OT')
        label = resample_to_reference(label, image, interpolation='nearest', default_value=0)
    bbox = None
    if body_crop:
        bbox = body_bbox(image, margin=body_margin)
        image = crop_image(image, bbox)
        if label is not None:
            label = crop_image(label, bbox)
    if mask_body:
        mask = body_mask(image)
        image = image.with_array(np.where(mask, image.array, air).astype(image.array.dtype))
    arr = np.asarray(image.array)
    extra: Dict[str, Any] = dict(
        source=osp.abspath(src_path),
        source_label=osp.abspath(label_path) if label_path else None,
        preprocess=dict(spacing=float(spacing), body_crop=bool(body_crop),
                        body_margin=int(body_margin), mask_body=bool(mask_body)),
        body_bbox=None if bbox is None else [[int(s.start), int(s.stop)] for s in bbox],
        min=float(np.rint(arr.min())) if image.modality == 'CT' else float(arr.min()),
        max=float(arr.max()))
    if image.modality == 'MR':
        finite = arr[np.isfinite(arr)] if arr.dtype.kind == 'f' else arr.reshape(-1)
        lo, hi = np.percentile(finite, MR_PERCENTILES)
        extra['intensity_window'] = [float(lo), float(hi)]
    return save_cached_volume(image, npy_path, label=label, extra=extra)
