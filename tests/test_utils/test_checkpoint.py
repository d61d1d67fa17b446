"""Checkpoint loading in mmanat.utils.checkpoint: reading, extracting and fitting weights."""
import pytest
import torch
from torch import nn

from mmanat.utils import (InvalidInputError, fit_state_dict, load_checkpoint_file,
                          state_dict_of)


class _Tiny(nn.Module):

    def __init__(self, width=3):
        super().__init__()
        self.conv = nn.Conv1d(1, width, 1)
        self.norm = nn.BatchNorm1d(width)


def test_mmengine_checkpoint_round_trip(tmp_path):
    src = _Tiny()
    path = str(tmp_path / 'iter_1.pth')
    torch.save({'meta': {'cfg': 'x = 1'}, 'state_dict': src.state_dict(),
                'message_hub': {'log_scalars': {}}}, path)
    ckpt = load_checkpoint_file(path)
    assert ckpt['meta'] == {'cfg': 'x = 1'}
    state = state_dict_of(ckpt, path)
    assert set(state) == set(src.state_dict())
    dst = _Tiny()
    fit_state_dict(dst, state, path, 'tiny')
    for k, v in src.state_dict().items():
        assert torch.equal(dst.state_dict()[k], v), k


def test_state_dict_of_unwraps_ddp_and_drops_non_tensors():
    state = {'module.conv.weight': torch.ones(1), 'module.conv.bias': torch.zeros(1),
             'module.note': 'text'}
    out = state_dict_of({'model': state}, 'ddp.pth')
    assert sorted(out) == ['conv.bias', 'conv.weight']
    with pytest.raises(InvalidInputError, match='holds no weights'):
        state_dict_of({'state_dict': {'epoch': 3}}, 'empty.pth')


def test_fit_state_dict_names_every_kind_of_misfit():
    model = _Tiny(width=3)
    state = {k: v.clone() for k, v in _Tiny(width=4).state_dict().items()}
    del state['conv.bias']
    state['head.weight'] = torch.zeros(2)
    with pytest.raises(InvalidInputError) as err:
        fit_state_dict(model, state, 'bad.pth', 'tiny_cfg')
    msg = str(err.value)
    assert msg.startswith('bad.pth:') and "'tiny_cfg'" in msg
    assert '1 missing key(s): conv.bias' in msg
    assert '1 unexpected key(s): head.weight' in msg
    assert 'conv.weight (4, 1, 1) vs (3, 1, 1)' in msg


def test_unreadable_files_are_refused_with_the_path(tmp_path):
    with pytest.raises(InvalidInputError, match='checkpoint not found'):
        load_checkpoint_file(str(tmp_path / 'missing.pth'))
    junk = tmp_path / 'junk.pth'
    junk.write_bytes(b'not a checkpoint')
    with pytest.raises(InvalidInputError, match='junk.pth: cannot load the checkpoint'):
        load_checkpoint_file(str(junk))
    listed = tmp_path / 'list.pth'
    torch.save([torch.zeros(1)], str(listed))
    with pytest.raises(InvalidInputError, match='not a checkpoint'):
        load_checkpoint_file(str(listed))
