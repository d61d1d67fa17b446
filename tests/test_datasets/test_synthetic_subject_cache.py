"""The disk cache of SyntheticSubjectDataset: hit, miss, invalidation, bit-identical items."""
import os

import numpy as np
import pytest

from mmanat.datasets import synthetic_subject_cache as cache_module
from mmanat.datasets.synthetic_dataset import SyntheticSubjectDataset


def _counting(monkeypatch):
    from mmanat.datasets.synthetic import subject as subject_module
    calls = []
    real = subject_module.generate_subject

    def counting(*args, **kwargs):
        calls.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(subject_module, 'generate_subject', counting)
    return calls


def _make(cache_dir, **kw):
    cfg = dict(num_subjects=4, base_seed=7, modalities=('CT', 'MR'), spacing=8.0,
               aligned_pair=True, subject_kwargs=dict(lesions=0), cache_dir=cache_dir)
    cfg.update(kw)
    return SyntheticSubjectDataset(**cfg)


def _same_item(a, b):
    for k in ('image', 'label', 'pair_image'):
        assert np.array_equal(np.asarray(a[k].array), np.asarray(b[k].array))
        assert a[k].array.dtype == b[k].array.dtype
        assert a[k].same_geometry(b[k]) and a[k].modality == b[k].modality
    for k in ('modality', 'pair_modality', 'subject_id', 'label_names', 'img_shape', 'seed'):
        assert a[k] == b[k]
    assert np.array_equal(a['landmarks'].xyz, b['landmarks'].xyz)
    assert a['landmarks'].names == b['landmarks'].names


def test_cache_miss_then_hit_is_bit_identical(tmp_path, monkeypatch):
    calls = _counting(monkeypatch)
    plain = _make(None)[1]
    assert calls == [8]
    ds = _make(str(tmp_path))
    first = ds[1]                       # miss: generated and stored
    assert calls == [8, 8]
    entries = [e for e in os.listdir(tmp_path) if not e.startswith('.')]
    assert len(entries) == 1
    again = _make(str(tmp_path))[1]     # hit: a fresh dataset reads the entry
    assert calls == [8, 8]
    assert isinstance(again['image'].array, np.memmap)
    _same_item(plain, first)
    _same_item(plain, again)
    # copy-on-write: writing into a cached image does not touch the cache
    again['image'].array[0, 0, 0] += 1000.0
    assert np.array_equal(_make(str(tmp_path))[1]['image'].array, plain['image'].array)
    assert calls == [8, 8]


def test_cache_key_covers_options_and_generator(tmp_path, monkeypatch):
    calls = _counting(monkeypatch)
    _make(str(tmp_path))[0]
    _make(str(tmp_path), ct_kwargs=dict(noise=False), mr_kwargs=dict(bias=False))[0]
    assert calls == [7, 7]              # other renderer options: a miss
    _make(str(tmp_path))[0]
    assert calls == [7, 7]
    # a new generator version (edited source) invalidates every entry
    monkeypatch.setattr(cache_module, 'generator_version', lambda: 'edited')
    _make(str(tmp_path))[0]
    assert calls == [7, 7, 7]


def test_damaged_entry_is_regenerated(tmp_path, monkeypatch):
    calls = _counting(monkeypatch)
    ref = _make(str(tmp_path))[2]
    entry = [e for e in os.listdir(tmp_path) if not e.startswith('.')][0]
    (tmp_path / entry / 'item.pkl').write_bytes(b'not a pickle')
    out = _make(str(tmp_path))[2]
    assert calls == [9, 9]
    _same_item(ref, out)


def test_generator_version_is_stable_hex():
    v = cache_module.generator_version()
    assert v == cache_module.generator_version() and len(v) == 16
    int(v, 16)
    with pytest.raises(Exception):
        cache_module.SyntheticSubjectCache('')
