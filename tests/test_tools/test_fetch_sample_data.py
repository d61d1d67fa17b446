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
    made = []
    monkeypatch.setattr(tool, 'make_landmarks', lambda out: made.append(out) or 0)
    assert tool.main(['--out', str(tmp_path)]) == 0
    assert made == [str(tmp_path)]  # the landmark files are generated after the fetch


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


def test_landmark_files_kept_when_present(tmp_path):
    tool = _load_tool()
    (tmp_path / 'ct').mkdir()
    for scan in ('lung1', 'lung2'):
        (tmp_path / 'ct' / f'{scan}.nrrd').write_bytes(b'not read')
        (tmp_path / 'ct' / f'{scan}_landmarks.csv').write_text('name,x,y,z\ncarina,1,2,3\n')
    assert tool.make_landmarks(str(tmp_path)) == 0  # nothing regenerated, nothing read
    assert (tmp_path / 'ct' / 'lung1_landmarks.csv').read_text() == 'name,x,y,z\ncarina,1,2,3\n'


def test_landmark_failure_gives_clear_error(tmp_path, capsys):
    tool = _load_tool()
    (tmp_path / 'ct').mkdir()
    (tmp_path / 'ct' / 'lung1.nrrd').write_bytes(b'not an image')
    assert tool.make_landmarks(str(tmp_path)) == 1
    err = capsys.readouterr().err
    assert 'landmarks of the sample CTs' in err and 'lung1.nrrd' in err
    assert not (tmp_path / 'ct' / 'lung1_landmarks.csv').exists()
