"""tools/embed.py data-parallel under torchrun (2 CPU processes, gloo): every input embedded
exactly once, by rank."""
import os
import os.path as osp
import socket
import subprocess
import sys

import torch

from mmanat.apis import load_embeddings
from mmanat.fileio import write_image
from tests.helpers.position_encoder_standin import PositionEncoderStandIn, quadratic_volume

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def test_torchrun_embeds_each_input_once(tmp_path):
    data = tmp_path / 'data'
    data.mkdir()
    for i in range(3):
        write_image(quadratic_volume(shape=(8, 16, 16), origin=(i, 0.0, 0.0)),
                    str(data / f'v{i}.nrrd'))
    cfg = tmp_path / 'cfg.py'
    cfg.write_text("custom_imports = dict(imports=['tests.helpers.position_encoder_standin'])\n"
                   "model = dict(type='PositionEncoderStandIn', channels=16)\n")
    ckpt = tmp_path / 'ck.pth'
    torch.save({'state_dict': PositionEncoderStandIn(channels=16).state_dict()}, str(ckpt))
    env = dict(os.environ, PYTHONPATH=ROOT,
               OMP_NUM_THREADS='1')
    out = tmp_path / 'emb'
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node', '2',
           '--master_port', str(_free_port()), osp.join(ROOT, 'tools', 'embed.py'), str(data),
           '--config', str(cfg), '--checkpoint', str(ckpt), '--out-dir', str(out),
           '--launcher', 'pytorch', '--device', 'cpu']
    proc = subprocess.run(cmd, env=env, capture_output=True, encoding='utf-8', errors='replace',
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sorted(os.listdir(out)) == ['v0.emb.pt', 'v1.emb.pt', 'v2.emb.pt']
    assert 'rank 0: 2 embedded' in proc.stdout and 'rank 1: 1 embedded' in proc.stdout
    maps = load_embeddings(out / 'v1.emb.pt')
    assert maps.meta['source_path'].endswith('v1.nrrd')
