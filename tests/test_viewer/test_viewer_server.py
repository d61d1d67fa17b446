"""The viewer's server without a browser: NIfTI geometry for NiiVue, point files in and out,
and the safety rules of the HTTP app (only its own images and files, Host check, JSON only,
size limit, clear errors before / after a failed model load). Fast: no embedding is made.
"""
import json
import threading
import time
import urllib.error
import urllib.request

import numpy as np
import pytest


# ------------------------------------------------------------------ NIfTI for NiiVue
def test_nifti_keeps_the_itk_geometry_in_ras(oblique_volume):
    import nibabel as nib
    from mmanat.viewer.volumes import LPS_TO_RAS, image_nifti
    img = nib.Nifti1Image.from_bytes(image_nifti(oblique_volume))
    np.testing.assert_allclose(img.affine, LPS_TO_RAS @ oblique_volume.affine, atol=1e-5)
    np.testing.assert_allclose(img.header.get_sform(), img.affine, atol=1e-5)
    data = np.asarray(img.dataobj)
    assert data.shape == tuple(oblique_volume.size)  # i, j, k
    arr = oblique_volume.array
    for k, j, i in [(0, 0, 0), (7, 6, 5), (15, 13, 11), (3, 9, 2)]:
        assert data[i, j, k] == arr[k, j, i]
    # a voxel's world position: NIfTI RAS = LPS with x, y negated
    ijk = np.array([5.0, 6.0, 7.0])
    ras = img.affine @ np.append(ijk, 1)
    lps = oblique_volume.index_to_world(ijk)
    np.testing.assert_allclose(ras[:3], lps * [-1, -1, 1], atol=1e-4)


def test_nifti_of_a_2d_image_is_one_slice_in_z0():
    import nibabel as nib
    from mmanat.structures import MedicalImage
    from mmanat.viewer.volumes import image_nifti
    im = MedicalImage(np.arange(12, dtype=np.uint16).reshape(3, 4), spacing=(0.5, 0.25),
                      origin=(10.0, -4.0), direction=np.eye(2), modality='XR')
    img = nib.Nifti1Image.from_bytes(image_nifti(im))
    assert img.shape == (4, 3, 1)
    assert np.asarray(img.dataobj)[3, 2, 0] == im.array[2, 3]
    np.testing.assert_allclose(img.affine @ [3, 2, 0, 1], [-(10 + 1.5), -(-4 + 0.5), 0, 1])


# ------------------------------------------------------------------ point files
def test_points_parse_and_export_round_trip():
    from mmanat.structures import PointSet
    from mmanat.viewer.points import export_points, parse_points
    ps = PointSet(np.array([[1.5, -2.0, 3.25], [-4.0, 5.0, -6.5]]), names=['a', 'b c'])
    for fmt in ('mrk.json', 'csv', 'fcsv'):
        for space in ('LPS', 'RAS'):
            out = export_points(ps, fmt, space, stem='lung1 points')
            assert out['filename'] == f'lung1_points.{fmt}'
            rows = parse_points(out['filename'], out['text'])
            assert [r['name'] for r in rows] == ['a', 'b c']
            np.testing.assert_allclose([r['lps'] for r in rows], ps.xyz, atol=1e-9)
    doc = json.loads(export_points(ps, 'mrk.json', 'RAS')['text'])
    assert doc['markups'][0]['coordinateSystem'] == 'RAS'
    np.testing.assert_allclose(doc['markups'][0]['controlPoints'][0]['position'],
                               [-1.5, 2.0, 3.25])


def test_bad_point_files_name_the_file_and_the_fix():
    from mmanat.utils.exceptions import InvalidInputError
    from mmanat.viewer.points import parse_points, to_pointset
    with pytest.raises(InvalidInputError, match=r'mine\.mrk\.json: not valid JSON'):
        parse_points('mine.mrk.json', '{"markups": [')
    with pytest.raises(InvalidInputError, match=r'pts\.csv.*no .x. column'):
        parse_points('pts.csv', 'name,a,b\np,1,2\n')
    with pytest.raises(InvalidInputError, match='unknown point-file type'):
        parse_points('pts.txt', 'x')
    with pytest.raises(InvalidInputError, match=r'2D images take \.csv'):
        parse_points('p.mrk.json', '{}', ndim=2)
    with pytest.raises(InvalidInputError, match='finite'):
        to_pointset([{'name': 'a', 'lps': [1, 2, float('nan')]}])


# ------------------------------------------------------------------ the HTTP app
class _Server:
    """The app of a session served by uvicorn in a thread on a free port."""

    def __init__(self, session, **kw):
        import uvicorn
        from mmanat.viewer.app import bind_socket, create_app
        self.sock = bind_socket('127.0.0.1', 0)
        self.url = f'http://127.0.0.1:{self.sock.getsockname()[1]}'
        self.server = uvicorn.Server(uvicorn.Config(create_app(session, **kw),
                                                    log_level='error'))
        self.thread = threading.Thread(target=self.server.run,
                                       kwargs=dict(sockets=[self.sock]), daemon=True)
        self.thread.start()
        t0 = time.time()
        while not self.server.started and time.time() - t0 < 20:
            time.sleep(0.05)

    def request(self, path, body=None, headers=None, raw=None):
        data = raw if raw is not None else (None if body is None else
                                            json.dumps(body).encode())
        hdr = dict(headers or {})
        if data is not None:
            hdr.setdefault('Content-Type', 'application/json')
        req = urllib.request.Request(self.url + path, data=data, headers=hdr)
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as err:
            return err.code, dict(err.headers), err.read()

    def stop(self):
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture
def two_images(tmp_path, oblique_volume):
    from mmanat.fileio import write_image
    return [write_image(oblique_volume, str(tmp_path / f'{n}.nrrd')) for n in ('a', 'b')]


@pytest.fixture
def served(two_images):
    from mmanat.cli.viewer import default_checkpoint
    from mmanat.viewer import ViewerSession
    session = ViewerSession(two_images[0], two_images[1:], default_checkpoint(False))
    srv = _Server(session, max_body_bytes=1000)
    yield srv, session
    srv.stop()


def test_serves_only_its_own_images_and_files(served):
    import nibabel as nib
    srv, session = served
    code, headers, body = srv.request('/')
    assert code == 200 and b'mmanat viewer' in body
    assert "script-src 'self'" in headers['content-security-policy']
    code, _, body = srv.request('/api/info')
    info = json.loads(body)
    assert [im['name'] for im in info['images']] == ['a.nrrd', 'b.nrrd']
    assert str(session.template.path) not in body.decode()  # names only, never paths
    code, _, body = srv.request('/api/volume/1.nii')
    assert code == 200
    assert nib.Nifti1Image.from_bytes(body).shape == (12, 14, 16)
    assert srv.request('/api/volume/2.nii')[0] == 400
    for path in ('/static/app.py', '/static/..%2F..%2Fsetup.py', '/static/../app.py',
                 '/api/volume/..%2F0.nii', '/etc/passwd', '/api/overlay/1/1.nii'):
        assert srv.request(path)[0] in (400, 404), path
    assert srv.request('/static/viewer.js')[0] == 200


def test_rejects_other_hosts_forms_and_big_requests(served):
    srv, _ = served
    assert srv.request('/api/info', headers={'Host': 'evil.example'})[0] == 400
    code, _, body = srv.request('/api/match', raw=b'points=1',
                                headers={'Content-Type': 'application/x-www-form-urlencoded'})
    assert code == 400 and b'must be JSON' in body
    code, _, body = srv.request('/api/points/parse', {'filename': 'a.csv', 'text': 'x' * 5000})
    assert code == 413 and b'over the limit' in body


def test_match_before_and_after_a_failed_model_load(served, tmp_path):
    srv, session = served
    code, _, body = srv.request('/api/match', {'points': [[0, 0, 0]]})
    assert code == 503 and b'not ready yet' in body
    session.checkpoint = str(tmp_path / 'broken.pth')  # the model cannot load
    (tmp_path / 'broken.pth').write_bytes(b'not a checkpoint')
    session.cache_dir = str(tmp_path / 'cache')
    with pytest.raises(Exception):
        session.prepare(log=lambda s: None)
    code, _, body = srv.request('/api/status')
    assert json.loads(body)['state'] == 'error'
    code, _, body = srv.request('/api/match', {'points': [[0, 0, 0]]})
    assert code == 503 and b'failed to load' in body, body


def test_points_outside_the_template_are_refused(served):
    srv, _ = served
    code, _, body = srv.request('/api/points/parse',
                                {'filename': 'p.csv', 'text': 'name,x,y,z\nfar,900,0,0\n'})
    assert code == 400
    msg = json.loads(body)['error']
    assert 'p.csv' in msg and 'outside the template a.nrrd' in msg and 'RAS' in msg


@pytest.mark.slow
def test_radiographs_are_matched_in_2d_like_the_api(xray_path, tmp_path):
    """A 2D image pair with the shipped 2D SAM: the session answers the Python API's 2D match
    (z = 0), its similarity overlay is one slice, 2D point files are name,x,y."""
    import nibabel as nib
    from mmanat.apis import Matcher
    from mmanat.cli.viewer import default_checkpoint
    from mmanat.viewer import ViewerSession
    from mmanat.viewer.points import export_points, parse_points, to_pointset
    session = ViewerSession(xray_path, [xray_path], default_checkpoint(True),
                            cache_dir=str(tmp_path / 'cache'))
    session.prepare(log=lambda s: None)
    assert session.planar and session.template.info()['window'] == 'auto'
    ans = session.match([[900.0, 800.0, 0.0]], overlay=True)
    got = np.asarray(ans['targets'][0]['points'][0])
    want = Matcher(session.template.maps, session.targets[0].maps).match(
        np.array([[900.0, 800.0]]), method='reference')
    np.testing.assert_allclose(got[:2], want.points[0], atol=1e-6)
    assert got[2] == 0.0
    ov = nib.Nifti1Image.from_bytes(session.overlay_bytes(1, 1))
    assert ov.shape[2] == 1 and np.asarray(ov.dataobj).max() == pytest.approx(
        ans['targets'][0]['scores'][0], abs=0.05)
    rows = parse_points('cxr.csv', 'name,x,y\napex,900,800\n', ndim=2)
    assert rows == [{'name': 'apex', 'lps': [900.0, 800.0]}]
    assert export_points(to_pointset(rows, 2), 'csv')['text'].startswith('name,x,y\n')
