"""Release checkpoints in fp16 keep what fp16 cannot hold in fp32 (a BatchNorm running
variance of 1e5 would become inf and switch its channel off)."""
import os.path as osp
import subprocess
import sys

import torch

from mmanat.utils.checkpoint import FP16_MAX, state_dict_to_fp16

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _state():
    bn = torch.nn.BatchNorm3d(4)
    bn.running_var.copy_(torch.tensor([1.0, 9.9e4, 2.0e5, 3.0]))
    conv = torch.nn.Conv3d(1, 4, 3)
    state = {f'stem.bn.{k}': v for k, v in bn.state_dict().items()}
    state.update({f'stem.conv.{k}': v for k, v in conv.state_dict().items()})
    state['note'] = 'not a tensor'
    return state


def test_out_of_range_tensors_stay_fp32():
    state = _state()
    out, kept = state_dict_to_fp16(state)
    assert kept == ['stem.bn.running_var']
    assert out['stem.bn.running_var'].dtype == torch.float32
    torch.testing.assert_close(out['stem.bn.running_var'], state['stem.bn.running_var'])
    assert out['stem.conv.weight'].dtype == torch.float16
    assert out['stem.bn.num_batches_tracked'].dtype == torch.int64 and out['note'] == 'not a tensor'
    assert all(torch.isfinite(v).all() for v in out.values() if torch.is_tensor(v))
    # what plain .half() would have done
    assert not torch.isfinite(state['stem.bn.running_var'].half()).all()
    assert FP16_MAX == 65504.0


def test_publish_tool_keeps_running_var(tmp_path):
    src, dst = tmp_path / 'iter_1.pth', tmp_path / 'small.pth'
    torch.save({'state_dict': _state(), 'meta': {'iter': 1}}, src)
    res = subprocess.run([sys.executable, osp.join(ROOT, 'tools', 'publish_checkpoint.py'),
                          str(src), str(dst), '--fp16'], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert 'kept in float32' in res.stdout and 'stem.bn.running_var' in res.stdout
    sd = torch.load(dst, map_location='cpu', weights_only=False)['state_dict']
    assert sd['stem.bn.running_var'].dtype == torch.float32
    assert sd['stem.conv.weight'].dtype == torch.float16
