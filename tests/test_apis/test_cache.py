"""Embedding cache: exact round trip, model identity check, format version, atomic writes."""
import os

import numpy as np
import pytest
import torch

from mmanat.apis import embed, load_embeddings, match, save_embeddings
from mmanat.apis import cache as cache_mod
from mmanat.utils.exceptions import InvalidInputError
from tests.helpers.position_encoder_standin import PositionEncoderStandIn, quadratic_volume


@pytest.fixture(scope='module')
def model():
    return PositionEncoderStandIn(channels=16, semantic=True)


@pytest.fixture(scope='module')
def maps(model):
    img = quadratic_volume(shape=(12, 32, 48))
    img.path = 'data/vol.nrrd'
    return embed(model, img)


def test_round_trip_is_exact(tmp_path, maps, model):
    path = save_embeddings(maps, tmp_path / 'a.emb.pt', dtype='float32')
    back = load_embeddings(path, expected_model=model)
    assert back.levels == ('fine', 'coarse', 'semantic')
    for lv in maps.levels:
        assert back.maps[lv].dtype == torch.float32
        assert torch.equal(back.maps[lv], maps.maps[lv])
        assert back.grid(lv).allclose(maps.grid(lv), tol=0)
    assert back.strides == maps.strides
    assert back.input_grid.allclose(maps.input_grid, tol=0)
    assert back.source_grid.allclose(maps.source_grid, tol=0)
    assert back.model == maps.model and back.model_id == maps.model_id
    assert back.meta['source_path'] == 'data/vol.nrrd'
    # and it matches exactly like the in-memory maps
    q = maps.source_grid.world_bounds()[0][None] + 20.0
    a, b = match(maps, q, maps), match(back, q, back)
    np.testing.assert_array_equal(a.points, b.points)


def test_float16_storage(tmp_path, maps):
    p16 = save_embeddings(maps, tmp_path / 'h.emb.pt')  # float16 is the default
    p32 = save_embeddings(maps, tmp_path / 'f.emb.pt', dtype='float32')
    assert os.path.getsize(p16) < 0.6 * os.path.getsize(p32)
    back = load_embeddings(p16)
    for lv in maps.levels:
        assert torch.equal(back.maps[lv], maps.maps[lv].half().float())
        assert (back.maps[lv] - maps.maps[lv]).abs().max() < 1e-3


def test_cache_from_another_model_is_refused(tmp_path, maps):
    path = save_embeddings(maps, tmp_path / 'a.emb.pt')
    other = PositionEncoderStandIn(channels=16, seed=5)
    with pytest.raises(InvalidInputError) as err:
        load_embeddings(path, expected_model=other)
    msg = str(err.value)
    assert 'a.emb.pt' in msg and maps.model_id in msg and 're-embed' in msg
    # the same model by identity dict or id string is accepted
    load_embeddings(path, expected_model=maps.model)
    load_embeddings(path, expected_model=maps.model_id)
    with pytest.raises(InvalidInputError):
        load_embeddings(path, expected_model='other_config@0123456789ab')


def test_old_format_version_is_refused(tmp_path, maps):
    path = save_embeddings(maps, tmp_path / 'a.emb.pt')
    obj = torch.load(path, weights_only=True)
    obj['format_version'] = cache_mod.FORMAT_VERSION - 1
    torch.save(obj, path)
    with pytest.raises(InvalidInputError, match='format version 0.*re-create'):
        load_embeddings(path)


def test_not_a_cache_is_refused(tmp_path):
    junk = tmp_path / 'junk.emb.pt'
    junk.write_bytes(b'\x00garbage')
    with pytest.raises(InvalidInputError, match='cannot read'):
        load_embeddings(junk)
    torch.save({'weights': torch.zeros(2)}, tmp_path / 'ckpt.pt')
    with pytest.raises(InvalidInputError, match='not an mmanat embedding cache'):
        load_embeddings(tmp_path / 'ckpt.pt')
    with pytest.raises(InvalidInputError, match='not found'):
        load_embeddings(tmp_path / 'missing.emb.pt')


def test_write_is_atomic(tmp_path, maps, monkeypatch):
    path = tmp_path / 'a.emb.pt'
    save_embeddings(maps, path, dtype='float32')
    before = path.read_bytes()

    def broken_save(obj, f, *args, **kwargs):
        with open(f, 'wb') as fh:
            fh.write(b'half a file')
        raise OSError('disk full')

    monkeypatch.setattr(cache_mod.torch, 'save', broken_save)
    with pytest.raises(OSError, match='disk full'):
        save_embeddings(maps, path)
    assert path.read_bytes() == before  # the old cache is untouched
    assert sorted(os.listdir(tmp_path)) == ['a.emb.pt']  # no temporary file left
    with pytest.raises(OSError):
        save_embeddings(maps, tmp_path / 'new.emb.pt')
    assert not (tmp_path / 'new.emb.pt').exists()


def test_bad_dtype_is_refused(tmp_path, maps):
    with pytest.raises(InvalidInputError, match='float16'):
        save_embeddings(maps, tmp_path / 'a.emb.pt', dtype='int8')
