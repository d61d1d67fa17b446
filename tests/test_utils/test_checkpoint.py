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


def test_checkpoint_network_from_stored_config_and_from_weights():
    from mmanat.utils.checkpoint import checkpoint_network
    conv3d = {'backbone.conv.weight': torch.zeros(4, 1, 3, 3, 3)}
    conv2d = {'backbone.conv.weight': torch.zeros(4, 1, 3, 3)}
    sam = checkpoint_network({'meta': {'cfg': "model = dict(type='SAM')\n"}}, conv3d)
    assert sam == dict(type='SAM', kind='3d-embedding', dims=3)
    adam = checkpoint_network({'meta': {'cfg': "model = dict(type='Adam')\n"}}, conv2d)
    assert adam == dict(type='Adam', kind='2d-embedding', dims=2)
    adam_v2 = checkpoint_network({'meta': {'cfg': "model = dict(type='AdamV2')\n"}}, conv2d)
    assert adam_v2 == dict(type='AdamV2', kind='2d-embedding', dims=2)
    # no stored config: the convolutions say 2D or 3D
    assert checkpoint_network({}, conv2d) == dict(type=None, kind=None, dims=2)
    assert checkpoint_network({'meta': {'cfg': 'not python ('}}, {'w': torch.zeros(3)}) == \
        dict(type=None, kind=None, dims=None)


def test_check_network_fits_names_found_and_expected():
    from mmengine.config import Config

    from mmanat.utils.checkpoint import check_network_fits
    adam = dict(type='Adam', kind='2d-embedding', dims=2)
    with pytest.raises(InvalidInputError) as err:
        check_network_fits('a.pth', adam, '3d-embedding', user='tools/match.py')
    msg = str(err.value)
    assert msg.startswith('a.pth: the checkpoint holds a 2D radiograph embedding network')
    assert 'tools/match.py needs a 3D dense anatomical embedding network' in msg
    assert 'checkpoints/sam_default.pth' in msg
    # weights only (no stored config): judged by the dimension of the convolutions
    with pytest.raises(InvalidInputError, match='2D convolutions'):
        check_network_fits('w.pth', dict(type=None, kind=None, dims=2), '3d-embedding')
    check_network_fits('w.pth', dict(type=None, kind=None, dims=3), '3d-embedding')
    # against a config: SAM and UAE-S are one kind; Adam is not
    uaes = Config(dict(model=dict(type='UAES')))
    check_network_fits('s.pth', dict(type='SAM', kind='3d-embedding', dims=3), None, cfg=uaes)
    with pytest.raises(InvalidInputError, match="config 'uae' builds a 3D .*model type UAES"):
        check_network_fits('a.pth', adam, None, cfg=uaes, config_name='uae')
    # unknown model types are not judged by kind
    check_network_fits('x.pth', dict(type='Custom', kind=None, dims=None), '3d-embedding',
                       cfg=Config(dict(model=dict(type='Other'))))
