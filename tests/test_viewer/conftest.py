"""Fixtures of the viewer tests: small copies of the sample CTs and headless Chromium driven
by Playwright (helpers: tests/helpers/viewer_browser.py).

A missing browser FAILS the browser tests with the fix in the message; they are skipped only
when ``MMANAT_SKIP_BROWSER=1`` is set explicitly.
"""
import os

import pytest

from tests.helpers.viewer_browser import CHROMIUM_FLAGS, chromium_executable


@pytest.fixture(scope='session')
def browser():
    """A headless Chromium (Playwright, Debian's binary, a fresh temporary profile)."""
    if os.environ.get('MMANAT_SKIP_BROWSER') == '1':
        pytest.skip('MMANAT_SKIP_BROWSER=1: browser tests skipped on request')
    exe = chromium_executable()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail('the python package playwright is missing: run `bash tools/setup_env.sh` '
                    '(requirements/tests.txt).')
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=exe, headless=True, args=CHROMIUM_FLAGS)
        yield b
        b.close()


@pytest.fixture(scope='module')
def small_ct_pair(tmp_path_factory, sample_data_dir):
    """lung1 / lung2 with every second column and row (same world geometry, a quarter of the
    voxels): the browser loads and draws them faster."""
    from mmanat.fileio import read_image, write_image
    from mmanat.structures import MedicalImage
    out = tmp_path_factory.mktemp('viewer_images')
    paths = []
    for name in ('lung1', 'lung2'):
        src = sample_data_dir / 'ct' / f'{name}.nrrd'
        if not src.is_file():
            pytest.fail(f'{src} is missing: run `make data` (tools/fetch_sample_data.py).')
        im = read_image(str(src))
        small = MedicalImage(im.array[:, ::2, ::2].copy(), spacing=im.spacing * [2, 2, 1],
                             origin=im.origin, direction=im.direction, modality=im.modality)
        paths.append(write_image(small, str(out / f'{name}_small.nrrd'), compress=False))
    return paths
