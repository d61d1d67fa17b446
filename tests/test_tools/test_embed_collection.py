"""tools/embed.py over a collection: sharding by torchrun environment, resume after a kill
(finished caches skipped, nothing half-written left), the embeddings index, and
tools/query.py answering one query against the cached collection."""
import csv
import os
import os.path as osp
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from mmanat.apis import load_embeddings
from mmanat.apis.collection import (INDEX_NAME, IndexPart, list_caches, merge_index,
                                    read_index, shard_from_env, shard_items)
from mmanat.cli import embed as embed_cli
from mmanat.cli import query as query_cli
from mmanat.fileio import write_image
from mmanat.utils.exceptions import InvalidInputError
from tests.helpers.position_encoder_standin import PositionEncoderStandIn, quadratic_volume

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _model_files(tmp_path, slow: float = 0.0):
    cfg = tmp_path / 'cfg.py'
    if slow:
        cfg.write_text("custom_imports = dict(imports=['tests.helpers.slow_standin'])\n"
                       f"model = dict(type='SlowPositionEncoderStandIn', channels=16, "
                       f"delay_s={slow})\n")
    else:
        cfg.write_text("custom_imports = dict(imports=['tests.helpers.position_encoder_standin'])"
                       "\nmodel = dict(type='PositionEncoderStandIn', channels=16)\n")
    ckpt = tmp_path / 'ck.pth'
    torch.save({'state_dict': PositionEncoderStandIn(channels=16).state_dict()}, str(ckpt))
    return str(cfg), str(ckpt)


def _volumes(folder, n):
    folder.mkdir(exist_ok=True)
    for i in range(n):
        write_image(quadratic_volume(shape=(8, 16, 16), origin=(i, 0.0, 0.0)),
                    str(folder / f'v{i}.nrrd'))
    return folder


def test_shard_helpers():
    assert shard_from_env({}) == (0, 1)
    assert shard_from_env({'RANK': '1', 'WORLD_SIZE': '2'}) == (1, 2)
    assert shard_from_env({'SLURM_PROCID': '3', 'SLURM_NTASKS': '4'}) == (3, 4)
    with pytest.raises(InvalidInputError, match='not in'):
        shard_from_env({'RANK': '2', 'WORLD_SIZE': '2'})
    items = list(range(7))
    parts = [shard_items(items, 3, i) for i in range(3)]
    assert sorted(sum(parts, [])) == items and [len(p) for p in parts] == [3, 2, 2]
    with pytest.raises(InvalidInputError):
        shard_items(items, 2, 2)


def test_index_parts_merge(tmp_path):
    (tmp_path / 'a.emb.pt').write_bytes(b'x')
    (tmp_path / 'b.emb.pt').write_bytes(b'x')
    p0, p1 = IndexPart(str(tmp_path), 'r0'), IndexPart(str(tmp_path), 'r1')
    p0.add({'cache': 'a.emb.pt', 'image': 'a.nrrd', 'written_at': '2024-01-01T00:00:00'})
    p1.add({'cache': 'b.emb.pt', 'image': 'b.nrrd', 'written_at': '2024-01-01T00:00:00'})
    p1.add({'cache': 'a.emb.pt', 'image': 'a2.nrrd', 'written_at': '2024-01-02T00:00:00'})
    p1.add({'cache': 'gone.emb.pt', 'image': 'g.nrrd', 'written_at': '2024-01-02T00:00:00'})
    with open(p1.path, 'a') as fh:  # a killed writer's last line
        fh.write('{"cache": "b.emb')
    rows = read_index(merge_index(str(tmp_path)))
    assert [(r['cache'], r['image']) for r in rows] == [('a.emb.pt', 'a2.nrrd'),
                                                        ('b.emb.pt', 'b.nrrd')]
    assert merge_index(str(tmp_path)) and len(read_index(str(tmp_path))) == 2  # idempotent
    with pytest.raises(InvalidInputError, match='not found'):
        read_index(str(tmp_path / 'nothing'))


@pytest.mark.slow
def test_input_list_and_env_shards(tmp_path, monkeypatch):
    """Two "torchrun" ranks (environment only, no process group) split a list of inputs."""
    data = _volumes(tmp_path / 'data', 3)
    cfg, ckpt = _model_files(tmp_path)
    lst = tmp_path / 'list.txt'
    lst.write_text('# scans\n' + '\n'.join(str(data / f'v{i}.nrrd') for i in range(3)) + '\n')
    out = tmp_path / 'emb'
    for rank in (0, 1):
        monkeypatch.setenv('RANK', str(rank))
        monkeypatch.setenv('WORLD_SIZE', '2')
        assert embed_cli.main(['--input-list', str(lst), '--config', cfg, '--checkpoint', ckpt,
                               '--out-dir', str(out), '--device', 'cpu', '--index']) == 0
    caches = sorted(f for f in os.listdir(out) if f.endswith('.emb.pt'))
    assert caches == ['v0.emb.pt', 'v1.emb.pt', 'v2.emb.pt']
    rows = read_index(str(out))
    assert [r['cache'] for r in rows] == caches
    assert {r['part'] for r in rows} == {'0/1:0/2', '0/1:1/2'}
    maps = load_embeddings(out / 'v0.emb.pt')
    assert all(r['model_id'] == maps.model_id and r['status'] == 'embedded' for r in rows)
    assert rows[0]['shape_zyx'] == '8 16 16' and float(rows[0]['seconds']) > 0
    bad = tmp_path / 'empty.txt'
    bad.write_text('# nothing\n')
    assert embed_cli.main(['--input-list', str(bad), '--out-dir', str(out)]) == 2


@pytest.mark.slow
def test_resume_after_kill(tmp_path):
    data = _volumes(tmp_path / 'data', 6)
    cfg, ckpt = _model_files(tmp_path, slow=1.5)
    out = tmp_path / 'emb'
    cmd = [sys.executable, osp.join(ROOT, 'tools', 'embed.py'), str(data), '--config', cfg,
           '--checkpoint', ckpt, '--out-dir', str(out), '--device', 'cpu', '--index']
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS='1')
    env.pop('RANK', None)
    env.pop('WORLD_SIZE', None)
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    try:
        while time.time() < deadline and proc.poll() is None:
            if out.is_dir() and len([f for f in os.listdir(out)
                                     if f.endswith('.emb.pt')]) >= 2:
                break
            time.sleep(0.1)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    done = sorted(f for f in os.listdir(out) if f.endswith('.emb.pt') and
                  not f.startswith('.tmp-'))
    assert 2 <= len(done) < 6, done
    for f in done:  # every finished cache is complete
        load_embeddings(out / f)
    mtimes = {f: os.stat(out / f).st_mtime_ns for f in done}
    rerun = subprocess.run(cmd, env=env, capture_output=True, encoding='utf-8', timeout=180)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert f'{6 - len(done)} embedded, {len(done)} already cached' in rerun.stdout
    assert all(os.stat(out / f).st_mtime_ns == t for f, t in mtimes.items())  # not rewritten
    names = sorted(os.listdir(out))
    assert not [n for n in names if n.startswith('.tmp-')], names
    assert sorted(f for f in names if f.endswith('.emb.pt')) == [f'v{i}.emb.pt'
                                                                 for i in range(6)]
    rows = read_index(str(out))
    assert len(rows) == 6 and {r['status'] for r in rows} == {'embedded', 'cached'}


def test_query_many_targets(tmp_path):
    data = _volumes(tmp_path / 'data', 3)
    cfg, ckpt = _model_files(tmp_path)
    out = tmp_path / 'emb'
    assert embed_cli.main([str(data), '--config', cfg, '--checkpoint', ckpt, '--out-dir',
                           str(out), '--device', 'cpu', '--index']) == 0
    tpl = quadratic_volume(shape=(8, 16, 16), origin=(0.0, 0.0, 0.0))
    pts = tpl.array_index_to_world(np.array([[4.0, 8.0, 8.0], [3.0, 6.0, 9.0]]))
    pfile = tmp_path / 'p.csv'
    pfile.write_text('name,x,y,z\n' + ''.join(f'p{i},{x},{y},{z}\n'
                                              for i, (x, y, z) in enumerate(pts)))
    table = tmp_path / 'found.csv'
    for src in (['--targets-dir', str(out)], ['--index', str(out / INDEX_NAME)]):
        code = query_cli.main(['--template', str(out / 'v0.emb.pt'), '--points', str(pfile),
                               *src, '--out', str(table), '--method', 'reference',
                               '--no-progress'])
        assert code == 0
        with open(table) as fh:
            rows = list(csv.DictReader(fh))
        assert len(rows) == 4  # 2 targets (the template skipped) x 2 points
        assert {osp.basename(r['target']) for r in rows} == {'v1.emb.pt', 'v2.emb.pt'}
        assert all(r['quality'] == 'ok' and float(r['score']) > 0.9 for r in rows)
    assert len(list_caches(targets_dir=str(out))) == 3
    with pytest.raises(InvalidInputError, match='no embedding cache'):
        list_caches(index=str(out), model_id='other@ffff')
    assert query_cli.main(['--template', str(data / 'v0.nrrd'), '--points', str(pfile),
                           '--targets-dir', str(out), '--out', str(table)]) == 2
