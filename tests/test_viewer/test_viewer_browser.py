"""The viewer in a real browser: ``tools/viewer.py`` serves two (downsampled) sample CTs,
headless Chromium opens the page, clicks a known template point and the page's match must be
the Python API's answer for that point; the points are saved and loaded as files; the
similarity overlay is drawn and a screenshot is kept.

Run alone: ``.venv/bin/python -m pytest tests/test_viewer -q``. Needs /usr/bin/chromium
(tools/setup_env.sh); ``MMANAT_SKIP_BROWSER=1`` skips these tests explicitly.
"""
import glob
import json
import os
import shutil
import statistics
import time
from pathlib import Path

import numpy as np
import pytest

from tests.helpers.viewer_browser import ROOT, ViewerProcess, wait_js

pytestmark = pytest.mark.slow
CARINA = 'carina'  # a landmark of data/samples/ct/lung1_landmarks.csv
ARTEFACTS = ROOT / 'work_dirs' / 'test_viewer'


@pytest.fixture(scope='module')
def server(small_ct_pair, tmp_path_factory):
    """The viewer on any free port, embeddings at 4 mm in a fresh cache folder."""
    cache = tmp_path_factory.mktemp('viewer_cache')
    proc = ViewerProcess(['--template', small_ct_pair[0], '--target', small_ct_pair[1],
                          '--no-browser', '--port', '0', '--spacing', '4',
                          '--cache-dir', str(cache)])
    yield dict(url=proc.url, cache=cache, proc=proc)
    proc.stop()


@pytest.fixture(scope='module')
def page(browser, server):
    """The page, loaded and ready (images shown, embeddings done)."""
    context = browser.new_context(viewport={'width': 1400, 'height': 760},
                                  accept_downloads=True)
    pg = context.new_page()
    pg.set_default_timeout(120_000)  # SwiftShader draws on the CPU: slow on a loaded machine
    errors = []
    pg.on('pageerror', lambda e: errors.append(str(e)))
    t0 = time.time()
    pg.goto(server['url'])
    wait_js(pg, 'window.mmanatViewer && window.mmanatViewer.state.panelsReady '
            '&& window.mmanatViewer.state.ready', timeout=180, what='the page to be ready')
    print(f'\n[viewer test] page ready in {time.time() - t0:.1f} s')
    pg.select_option('#view', 'axial')
    pg.select_option('#window', 'lung')
    yield pg
    assert not errors, errors
    context.close()


@pytest.fixture(scope='module')
def api_matcher(server, page):
    """The Python API on the same cached embeddings the server uses."""
    from mmanat.apis import Matcher, load_embeddings
    caches = {Path(p).name.split('-')[0]: p
              for p in glob.glob(str(server['cache'] / '*.emb.pt'))}
    assert set(caches) == {'lung1_small', 'lung2_small'}, caches
    return Matcher(load_embeddings(caches['lung1_small']), load_embeddings(caches['lung2_small']))


def landmarks(sample_data_dir):
    from mmanat.fileio import read_points
    return read_points(str(sample_data_dir / 'ct' / 'lung1_landmarks.csv'))


def click_template(page, lps, dx=0.0, dy=0.0):
    """Click the template's axial view at an LPS point (plus a pixel offset); returns the
    page's match record after the answer arrived."""
    n = page.evaluate('window.mmanatViewer.state.matchCount')
    page.fill('#goto', ', '.join(f'{v:.3f}' for v in lps))
    page.click('#goto-btn')
    pos = page.evaluate(f'window.mmanatViewer.screenPosOf(0, {json.dumps(list(lps))})')
    assert pos is not None, 'the point is not in the template view'
    page.mouse.click(pos[0] + dx, pos[1] + dy)
    wait_js(page, f'window.mmanatViewer.state.matchCount > {n}', timeout=30, what='a match')
    return page.evaluate('({query: window.mmanatViewer.state.lastMatch.query, '
                         'answer: window.mmanatViewer.state.lastMatch.answer, '
                         'ms: window.mmanatViewer.state.lastRoundTripMs})')


def test_click_matches_the_python_api(page, api_matcher, sample_data_dir):
    pts = landmarks(sample_data_dir)
    carina = pts[CARINA]
    rec = click_template(page, carina)
    query = np.asarray(rec['query'])
    # the click landed on the carina: the axial slice exactly, in-plane within two pixels
    assert abs(query[2] - carina[2]) < 0.01, (query, carina)
    assert np.linalg.norm(query[:2] - carina[:2]) < 2.5, (query, carina)
    page_match = np.asarray(rec['answer']['targets'][0]['points'][0])
    res = api_matcher.match(query[None], method='reference')
    err = np.linalg.norm(page_match - res.points[0])
    print(f'[viewer test] query {np.round(query, 2)} -> page {np.round(page_match, 2)}, '
          f'API {np.round(res.points[0], 2)} ({err:.4f} mm)')
    assert err < 0.5
    assert rec['answer']['targets'][0]['scores'][0] == pytest.approx(res.scores[0], abs=1e-4)
    # the target view jumped to the match
    shown = np.asarray(page.evaluate(
        'window.mmanatViewer.rasToLps(Array.from(window.mmanatViewer.state.panels[1].nv'
        '.frac2mm(window.mmanatViewer.state.panels[1].nv.scene.crosshairPos, 0, true)))'))
    assert np.linalg.norm(shown - page_match) < 0.05, (shown, page_match)
    assert 'match score' in page.inner_text('.panel.target .readout')


def test_round_trip_is_fast(page, sample_data_dir):
    carina = landmarks(sample_data_dir)[CARINA]
    times = [click_template(page, carina, dx=3 * k, dy=-2 * k)['ms'] for k in range(5)]
    med = statistics.median(times)
    print(f'[viewer test] click-to-match round trips (ms): '
          f'{", ".join(f"{t:.0f}" for t in times)}; median {med:.0f} ms')
    assert med < 500, times


def test_save_points_as_slicer_and_csv(page, tmp_path):
    from mmanat.fileio import read_points
    items = page.evaluate('window.mmanatViewer.points.toJSON()')
    assert len(items) >= 1
    expect = np.asarray([p['lps'] for p in items])
    names = [p['name'] for p in items]
    page.select_option('#format', 'mrk.json')
    page.select_option('#space', 'LPS')
    with page.expect_download() as dl:
        page.click('#save')
    path = tmp_path / dl.value.suggested_filename
    dl.value.save_as(str(path))
    assert path.name.endswith('.mrk.json')
    doc = json.loads(path.read_text())
    assert doc['markups'][0]['coordinateSystem'] == 'LPS'
    got = read_points(str(path))
    assert got.names == names
    np.testing.assert_allclose(got.xyz, expect, atol=1e-6)
    # CSV in RAS: declared in the file, x and y negated
    page.select_option('#format', 'csv')
    page.select_option('#space', 'RAS')
    with page.expect_download() as dl:
        page.click('#save')
    path = tmp_path / dl.value.suggested_filename
    dl.value.save_as(str(path))
    text = path.read_text()
    assert text.startswith('# space = RAS') and path.suffix == '.csv'
    first = text.splitlines()[2].split(',')
    np.testing.assert_allclose([float(v) for v in first[1:4]], expect[0] * [-1, -1, 1],
                               atol=1e-6)
    np.testing.assert_allclose(read_points(str(path)).xyz, expect, atol=1e-6)
    page.select_option('#space', 'LPS')


def test_load_points_and_export_matches(page, api_matcher, sample_data_dir, tmp_path):
    from mmanat.fileio import read_points
    pts = landmarks(sample_data_dir)
    n0 = page.evaluate('window.mmanatViewer.points.items.length')
    page.set_input_files('#load', str(sample_data_dir / 'ct' / 'lung1_landmarks.csv'))
    wait_js(page, f'window.mmanatViewer.points.items.length === {n0 + len(pts)} && '
            'window.mmanatViewer.points.items.every((p) => p.matches[1])', timeout=60,
            what='the loaded points to be matched')
    items = page.evaluate('window.mmanatViewer.points.items.slice(-%d)' % len(pts))
    assert [p['name'] for p in items] == pts.names
    res = api_matcher.match(pts.xyz, method='reference')
    got = np.asarray([p['matches']['1']['lps'] for p in items])
    np.testing.assert_allclose(got, res.points, atol=0.5)
    # export the matches of the target as CSV: the API's points with their scores
    page.select_option('#format', 'csv')
    with page.expect_download() as dl:
        page.click('#export')
    path = tmp_path / dl.value.suggested_filename
    dl.value.save_as(str(path))
    found = read_points(str(path))
    assert found.names[-len(pts):] == pts.names
    np.testing.assert_allclose(found.xyz[-len(pts):], res.points, atol=0.5)
    np.testing.assert_allclose(found.extra['score'][-len(pts):], res.scores, atol=1e-4)


def test_bad_point_file_is_reported_in_the_page(page, tmp_path):
    bad = tmp_path / 'broken.mrk.json'
    bad.write_text('{"markups": [ oops')
    page.set_input_files('#load', str(bad))
    text = wait_js(page, "!document.getElementById('error').hidden && "
                   "document.getElementById('error-text').textContent", timeout=20,
                   what='the error banner')
    assert 'broken.mrk.json' in text and 'not valid JSON' in text, text
    page.click('#error-close')


def test_similarity_overlay_and_screenshot(page, sample_data_dir, tmp_path):
    import matplotlib.image as mpimg
    page.check('#overlay')
    click_template(page, landmarks(sample_data_dir)[CARINA])
    wait_js(page, 'window.mmanatViewer.state.panels[1].nv.volumes.length === 2', timeout=30,
            what='the similarity overlay')
    time.sleep(0.5)
    shot = tmp_path / 'viewer.png'
    page.screenshot(path=str(shot))
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    kept = ARTEFACTS / 'viewer_screenshot.png'
    shutil.copyfile(shot, kept)
    print(f'[viewer test] screenshot: {kept}')
    # NiiVue really drew the images (WebGL2 on SwiftShader): the canvases are not blank
    for i in (0, 1):
        canvas = tmp_path / f'canvas{i}.png'
        page.locator(f'#gl{i}').screenshot(path=str(canvas))
        pixels = mpimg.imread(str(canvas))[..., :3]
        assert pixels.std() > 0.05, f'canvas {i} looks blank'
    page.uncheck('#overlay')
    assert os.path.getsize(kept) > 10_000
