"""mmanat-publish-checkpoint (tools/publish_checkpoint.py): weights only, fp16, printed hash."""
import hashlib

import pytest
import torch

from mmanat.cli import publish_checkpoint


def test_fp16_release_keeps_meta_and_prints_its_hash(tmp_path, capsys):
    src, dst = tmp_path / 'iter_5.pth', tmp_path / 'release' / 'model.pth'
    big = torch.tensor([1.0, 1e6])  # beyond the float16 range: stays float32
    torch.save({'state_dict': {'w': torch.linspace(0, 1, 8), 'big': big,
                               'steps': torch.tensor(3)},
                'meta': {'iter': 5, 'seed': 0, 'hook_msgs': {'x': 1}},
                'optimizer': {'state': {}}}, str(src))
    assert publish_checkpoint.main([str(src), str(dst), '--fp16']) == 0
    out = capsys.readouterr().out
    ckpt = torch.load(str(dst), map_location='cpu')
    assert set(ckpt) == {'state_dict', 'meta'}  # no optimizer state
    assert ckpt['state_dict']['w'].dtype == torch.float16
    assert ckpt['state_dict']['big'].dtype == torch.float32
    assert ckpt['state_dict']['steps'].dtype == torch.int64
    assert ckpt['meta'] == {'iter': 5, 'seed': 0, 'source': 'iter_5.pth'}
    digest = hashlib.sha256(dst.read_bytes()).hexdigest()
    assert f'sha256 {digest}' in out and 'kept in float32' in out and 'big' in out


def test_missing_source_is_one_error_line(tmp_path, capsys):
    assert publish_checkpoint.main([str(tmp_path / 'nope.pth'), str(tmp_path / 'o.pth')]) == 2
    err = capsys.readouterr().err
    assert err.count('\n') == 1
    assert err.startswith(f'error: checkpoint not found: {tmp_path / "nope.pth"}; pass')
    with pytest.raises(FileNotFoundError):
        open(tmp_path / 'o.pth')


def _bn_checkpoint(path):
    bn = torch.nn.BatchNorm1d(3)
    sd = bn.state_dict()
    sd['running_var'] = torch.tensor([1.0, float('inf'), 2.0])
    torch.save({'state_dict': {'bn.' + k: v for k, v in sd.items()},
                'meta': {'iter': 7, 'source': 'iter_7.pth'}}, str(path))


def test_non_finite_tensors_are_refused_unless_repaired(tmp_path, capsys):
    src, dst = tmp_path / 'model.pth', tmp_path / 'out' / 'model.pth'
    _bn_checkpoint(src)
    assert publish_checkpoint.main([str(src), str(dst), '--fp16']) == 2
    err = capsys.readouterr().err
    assert 'bn.running_var' in err and '--repair-bn' in err and 'nothing written' in err
    assert not dst.exists()
    assert publish_checkpoint.main([str(src), str(dst), '--fp16', '--repair-bn',
                                    'preserve']) == 0
    ckpt = torch.load(str(dst), map_location='cpu')
    sd = ckpt['state_dict']
    assert all(torch.isfinite(v.float()).all() for v in sd.values())
    assert sd['bn.weight'].tolist() == [1.0, 0.0, 1.0] and sd['bn.running_var'][1] == 1.0
    # a republished release keeps the name of the training checkpoint it came from
    assert ckpt['meta']['source'] == 'iter_7.pth'
    assert ckpt['meta']['repaired_bn'] == {'mode': 'preserve', 'channels': {'bn': [1]}}
