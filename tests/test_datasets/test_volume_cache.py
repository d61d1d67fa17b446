"""volume_cache: the .npy + .json cache of tools/preprocess.py (write, read, completeness,
stale entries, preprocessing one volume)."""
import json

import numpy as np
import pytest

from mmanat.datasets.volume_cache import (CACHE_VERSION, compact_dtype, is_complete_cache,
                                          load_cached_volume, preprocess_volume,
                                          read_cache_meta, save_cached_volume)
from mmanat.fileio import write_image
from mmanat.structures import MedicalImage
from mmanat.utils.exceptions import InvalidInputError

SPACING = (1.5, 2.0, 2.5)  # x, y, z mm
ORIGIN = (-12.0, 30.5, -400.0)


def _ct(shape=(6, 7, 8)):
    z, y, x = np.meshgrid(*[np.arange(n) for n in shape], indexing='ij')
    arr = (-1000.0 + 100.4 * x + 10.6 * y + z).astype(np.float32)  # not integers
    return MedicalImage(arr, spacing=SPACING, origin=ORIGIN, modality='CT')


@pytest.mark.parametrize('values, dtype', [
    (np.array([0, 1, -5], np.int64), np.int16),
    (np.array([True, False]), np.int16),
    (np.array([1.0, 2.0, -3.0], np.float64), np.int16),  # integral floats
    (np.array([0.5, 1.0]), np.float32),
    (np.array([0, 40000]), np.float32),  # outside the int16 range
    (np.array([-32769.0]), np.float32),
    (np.zeros(0, np.float64), np.int16),
])
def test_compact_dtype(values, dtype):
    assert compact_dtype(values) == np.dtype(dtype)


def test_round_trip_ct_with_label(tmp_path):
    ct = _ct()
    label = ct.with_array((ct.array > -500).astype(np.uint8), modality=None)
    npy = str(tmp_path / 'a.npy')
    meta = save_cached_volume(ct, npy, label=label, extra=dict(source='/x/a.nii.gz'))
    assert meta['complete'] is True and meta['version'] == CACHE_VERSION
    assert meta['dtype'] == 'int16' and meta['label'] == 'a_label.npy'
    assert meta['shape'] == [6, 7, 8] and meta['source'] == '/x/a.nii.gz'
    assert json.load(open(tmp_path / 'a.json')) == meta == read_cache_meta(npy)
    assert is_complete_cache(npy)

    image, lab = load_cached_volume(npy, with_label=True)
    assert not image.array.flags.writeable  # a read-only memory map
    assert image.array.dtype == np.int16
    np.testing.assert_array_equal(image.array, np.rint(ct.array))  # CT rounded to HU
    assert image.same_geometry(ct) and image.modality == 'CT'
    np.testing.assert_allclose(image.origin, ORIGIN)
    np.testing.assert_allclose(image.spacing, SPACING)
    assert image.meta['format'] == 'mmanat-cache' and image.path == npy
    assert lab.array.dtype == np.int16 and lab.same_geometry(ct) and lab.modality is None
    np.testing.assert_array_equal(lab.array, label.array)
    # without mmap the array is read whole: an ordinary, writeable ndarray
    plain = load_cached_volume(npy, mmap=False)
    assert plain.array.flags.writeable
    np.testing.assert_array_equal(plain.array, image.array)


def test_mr_keeps_floats_and_no_label(tmp_path):
    mr = _ct().with_array(np.linspace(0, 1, 6 * 7 * 8, dtype=np.float32).reshape(6, 7, 8),
                          modality='MR')
    npy = str(tmp_path / 'mr.npy')
    save_cached_volume(mr, npy)
    image, lab = load_cached_volume(npy, with_label=True)
    assert lab is None and image.array.dtype == np.float32
    np.testing.assert_array_equal(image.array, mr.array)
    # an explicit integer dtype clips to its range
    save_cached_volume(mr.with_array(mr.array * 1e6), str(tmp_path / 'c.npy'), dtype=np.int16)
    assert load_cached_volume(str(tmp_path / 'c.npy')).array.max() == 32767


def test_incomplete_and_stale_entries(tmp_path):
    npy = str(tmp_path / 'a.npy')
    ct = _ct()
    save_cached_volume(ct, npy, label=ct.with_array(np.zeros(ct.shape, np.uint8)))
    assert is_complete_cache(npy)
    sidecar = tmp_path / 'a.json'
    meta = json.loads(sidecar.read_text())

    sidecar.write_text(json.dumps(dict(meta, complete=False)))  # interrupted write
    assert not is_complete_cache(npy)
    sidecar.write_text(json.dumps(dict(meta, version=CACHE_VERSION + 1)))  # old format
    assert not is_complete_cache(npy)
    sidecar.write_text(json.dumps(meta))
    assert is_complete_cache(npy)

    np.save(tmp_path / 'a_label.npy', np.zeros((2, 2, 2), np.int16))  # stale label
    assert not is_complete_cache(npy)
    np.save(tmp_path / 'a_label.npy', np.zeros(ct.shape, np.int16))
    assert is_complete_cache(npy)

    np.save(npy, np.zeros((3, 3, 3), np.int16))  # array rewritten behind the sidecar
    assert not is_complete_cache(npy)
    with pytest.raises(InvalidInputError, match='stale'):
        load_cached_volume(npy)

    sidecar.unlink()  # sidecar missing: not complete, and loading says how to rebuild
    assert not is_complete_cache(npy)
    with pytest.raises(InvalidInputError, match='no geometry sidecar'):
        load_cached_volume(npy)
    assert not is_complete_cache(str(tmp_path / 'never.npy'))


def test_bad_inputs(tmp_path):
    ct = _ct()
    with pytest.raises(InvalidInputError, match='must end with .npy'):
        save_cached_volume(ct, str(tmp_path / 'a.nii'))
    other = MedicalImage(np.zeros((2, 2, 2), np.uint8), spacing=SPACING, origin=ORIGIN)
    with pytest.raises(InvalidInputError, match='differs from the image grid'):
        save_cached_volume(ct, str(tmp_path / 'b.npy'), label=other)
    with pytest.raises(InvalidInputError, match='not found') as exc:
        load_cached_volume(str(tmp_path / 'missing.npy'))
    assert 'missing.npy' in str(exc.value)
    save_cached_volume(ct, str(tmp_path / 'c.npy'))
    (tmp_path / 'c.json').write_text('{not json')
    with pytest.raises(InvalidInputError, match='unreadable cache sidecar'):
        read_cache_meta(str(tmp_path / 'c.npy'))
    assert not is_complete_cache(str(tmp_path / 'c.npy'))
    (tmp_path / 'd.npy').write_bytes(b'garbage')
    (tmp_path / 'd.json').write_text(json.dumps(dict(shape=[1])))
    with pytest.raises(InvalidInputError, match='unreadable cached array'):
        load_cached_volume(str(tmp_path / 'd.npy'))


def test_preprocess_volume(tmp_path):
    """Resample a small CT to 3 mm, crop to the body, store, read back."""
    shape = (20, 24, 28)  # z, y, x at 1.5 mm
    z, y, x = np.meshgrid(*[np.arange(n) for n in shape], indexing='ij')
    body = ((x - 14) ** 2 / 49 + (y - 12) ** 2 / 25) < 1
    arr = np.where(body, 40, -1000).astype(np.int16)
    src = write_image(MedicalImage(arr, spacing=(1.5, 1.5, 1.5), origin=(10.0, -5.0, 3.0),
                                   modality='CT'), tmp_path / 'ct.nii.gz')
    npy = str(tmp_path / 'cache' / 'ct.npy')
    (tmp_path / 'cache').mkdir()
    meta = preprocess_volume(src, npy, spacing=3.0, body_margin=1)
    assert is_complete_cache(npy)
    assert meta['source'] == src and meta['preprocess']['spacing'] == 3.0
    image = load_cached_volume(npy)
    np.testing.assert_allclose(image.spacing, 3.0)
    assert image.modality == 'CT' and image.array.dtype == np.int16
    # the body box (+1 voxel) is smaller than the resampled field of view in x and y
    assert image.shape[2] < 28 * 1.5 / 3 and image.shape[1] < 24 * 1.5 / 3
    assert image.shape[0] == 10  # the body fills z
    assert meta['min'] == -1000.0 and meta['max'] == 40.0
    assert 'intensity_window' not in meta  # MR only

    label_src = write_image(MedicalImage(arr.astype(np.uint8) * 0 + 7, modality='OT'),
                            tmp_path / 'label.nii.gz')
    with pytest.raises(InvalidInputError, match='neither CT nor MR'):
        preprocess_volume(label_src, str(tmp_path / 'cache' / 'lab.npy'))
