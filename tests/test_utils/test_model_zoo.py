"""Shipped checkpoints: the model zoo index matches the files, loading verifies the hash,
and a corrupted copy fails with a clear message."""
import json
import os
import os.path as osp
import re
import shutil

import pytest
import torch

from mmanat.apis import init_model
from mmanat.utils.exceptions import InvalidInputError
from mmanat.utils.model_zoo import (DEFAULT_CHECKPOINTS, CheckpointIntegrityError, load_zoo,
                                    register_checkpoint, resolve_checkpoint, sha256_file,
                                    verify_checkpoint)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CKPT_DIR = osp.join(ROOT, 'checkpoints')


def test_index_matches_shipped_files_and_model_card():
    zoo = load_zoo(CKPT_DIR)
    assert 'sam_default.pth' in zoo
    card = open(osp.join(ROOT, 'docs', 'en', 'model_zoo.md'), encoding='utf-8').read()
    for name, entry in zoo.items():
        path = osp.join(CKPT_DIR, name)
        assert osp.isfile(path), name
        assert sha256_file(path) == entry['sha256'], name
        assert osp.getsize(path) == entry['size_bytes'] <= 20 * 2 ** 20, name
        assert entry['sha256'] in card, f'{name}: hash missing from docs/en/model_zoo.md'
        assert osp.isfile(osp.join(ROOT, entry['config'])), entry['config']
    # every default that ships is listed
    for task, name in DEFAULT_CHECKPOINTS.items():
        if osp.isfile(osp.join(CKPT_DIR, name)):
            assert name in zoo, name
    shipped = [f for f in os.listdir(CKPT_DIR) if f.endswith('.pth')]
    assert sorted(shipped) == sorted(zoo)


def _tiny_checkpoint(folder):
    model = init_model('tests/data/configs/sam_micro_cpu.py', None, device='cpu')
    path = osp.join(folder, 'micro.pth')
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, path)
    return path


def test_corrupted_checkpoint_fails_clearly(tmp_path):
    path = _tiny_checkpoint(str(tmp_path))
    assert verify_checkpoint(path) is None  # not listed: no check
    entry = register_checkpoint(path, task='sam', config='tests/data/configs/sam_micro_cpu.py')
    index = json.load(open(osp.join(str(tmp_path), 'model_zoo.json')))
    assert sorted(os.listdir(str(tmp_path))) == ['micro.pth', 'model_zoo.json']  # no temp left
    assert index['micro.pth']['sha256'] == entry['sha256'] == sha256_file(path)
    assert verify_checkpoint(path)['sha256'] == entry['sha256']
    init_model('tests/data/configs/sam_micro_cpu.py', path, device='cpu')  # loads
    data = bytearray(open(path, 'rb').read())
    data[len(data) // 2] ^= 0xFF  # one flipped byte
    open(path, 'wb').write(bytes(data))
    with pytest.raises(CheckpointIntegrityError) as err:
        init_model('tests/data/configs/sam_micro_cpu.py', path, device='cpu')
    msg = str(err.value)
    assert 'micro.pth' in msg and entry['sha256'] in msg and 'git checkout' in msg
    assert re.search(r'SHA-256 is [0-9a-f]{64}', msg)
    open(path, 'wb').write(bytes(data[:100]))  # truncated
    with pytest.raises(CheckpointIntegrityError):
        verify_checkpoint(path)


def test_resolve_checkpoint_defaults(tmp_path, monkeypatch):
    monkeypatch.setenv('MMANAT_CHECKPOINT_DIR', str(tmp_path))
    with pytest.raises(InvalidInputError, match='sam_default.pth'):
        resolve_checkpoint(None, task='sam')
    shutil.copy(_tiny_checkpoint(str(tmp_path)), osp.join(str(tmp_path), 'sam_default.pth'))
    assert resolve_checkpoint(None, task='sam', announce=False) == osp.join(
        str(tmp_path), 'sam_default.pth')
    assert resolve_checkpoint('x.pth', task='sam') == 'x.pth'
    assert resolve_checkpoint(None, random_init=True, config='c.py') is None
    with pytest.raises(InvalidInputError, match='--random-init needs --config'):
        resolve_checkpoint(None, random_init=True)


@pytest.mark.parametrize('task', sorted(DEFAULT_CHECKPOINTS))
def test_every_default_checkpoint_ships_listed_under_its_task(task):
    """Each task's default (``--task`` of tools/publish_checkpoint.py) is a shipped file listed
    under that task, holding finite tensors and a stored config of a known network kind."""
    from mmanat.utils.checkpoint import (checkpoint_network, load_checkpoint_file,
                                         state_dict_of)
    name = DEFAULT_CHECKPOINTS[task]
    entry = load_zoo(CKPT_DIR).get(name)
    assert entry is not None, f'{name} (default of {task!r}) is not in model_zoo.json'
    assert entry['task'] == task, name
    path = osp.join(CKPT_DIR, name)
    assert osp.getsize(path) < 20 * 2 ** 20, name
    assert resolve_checkpoint(None, task=task, announce=False).endswith(name)
    ckpt = load_checkpoint_file(path)
    state = state_dict_of(ckpt, path)
    assert all(bool(torch.isfinite(v).all()) for v in state.values()
               if torch.is_tensor(v) and v.is_floating_point()), name
    net = checkpoint_network(ckpt, state)
    assert net['kind'] is not None, f'{name}: unknown network kind {net}'


def test_shipped_checkpoint_is_named_by_its_zoo_config():
    """init_model(None, shipped) takes the config stored in the checkpoint and names the model
    after the zoo entry's config (not after the checkpoints/ folder)."""
    zoo = load_zoo(CKPT_DIR)
    model = init_model(None, osp.join(CKPT_DIR, 'sam_default.pth'))
    want = osp.splitext(osp.basename(zoo['sam_default.pth']['config']))[0]
    assert model.mmanat_identity['config'] == want
    assert want == 'sam_tiny-fpn3d_1xb2-cpu-1000it_synthetic-ct-samples'
    assert model.mmanat_identity['sha256'] == zoo['sam_default.pth']['sha256']


def test_no_committed_checkpoint_holds_a_non_finite_tensor():
    """Every .pth under checkpoints/ (shipped models and training states in progress) holds
    finite tensors only: an inf BatchNorm variance switches a channel off silently."""
    import glob

    import torch
    files = sorted(glob.glob(osp.join(CKPT_DIR, '**', '*.pth'), recursive=True))
    assert len(files) >= 4
    for path in files:
        ckpt = torch.load(path, map_location='cpu', weights_only=True)
        state = ckpt.get('state_dict', ckpt)
        bad = [k for k, v in state.items() if torch.is_tensor(v) and v.is_floating_point()
               and not bool(torch.isfinite(v).all())]
        assert not bad, f'{osp.relpath(path, ROOT)}: non-finite {bad}'
