"""mmanat-fetch-data (tools/fetch_sample_data.py): idempotence, checksums, clear errors."""
import hashlib
import tarfile

import pytest

from mmanat.cli import fetch_data


def _load_tool():
    return fetch_data


def test_present_files_download_nothing(tmp_path, monkeypatch):
    tool = _load_tool()
    for rel, (_, _, _) in tool.FILES.items():
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(rel.encode())
    fake = {rel: (pkg, member, hashlib.sha256(rel.encode()).hexdigest())
            for rel, (pkg, member, _) in tool.FILES.items()}
    monkeypatch.setattr(tool, 'FILES', fake)

    def no_download(*a, **k):
        raise AssertionError('must not download when every file is present and verified')
    monkeypatch.setattr(tool, 'pip_download', no_download)
    assert tool.main(['--out', str(tmp_path)]) == 0


def test_checksum_mismatch_writes_nothing(tmp_path):
    tool = _load_tool()
    member = tmp_path / 'member.bin'
    member.write_bytes(b'payload')
    archive = tmp_path / 'a.tar.gz'
    with tarfile.open(archive, 'w:gz') as tf:
        tf.add(member, arcname='pkg/member.bin')
    out = tmp_path / 'out' / 'x.bin'
    with pytest.raises(tool.FetchError, match='checksum mismatch'):
        tool.extract_member(str(archive), 'pkg/member.bin', str(out), '0' * 64)
    assert not out.exists()
    assert list((tmp_path / 'out').iterdir()) == []
    good = hashlib.sha256(b'payload').hexdigest()
    tool.extract_member(str(archive), 'pkg/member.bin', str(out), good)
    assert out.read_bytes() == b'payload'


def test_unreachable_registry_gives_clear_error(tmp_path, monkeypatch, capsys):
    tool = _load_tool()

    def fail(req, dest):
        raise tool.FetchError(f'could not download {req} from the package registry')
    monkeypatch.setattr(tool, 'pip_download', fail)
    assert tool.main(['--out', str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert 'could not download pyradiomics==3.0.1' in err
    assert not any(p.is_file() for p in tmp_path.rglob('*'))
