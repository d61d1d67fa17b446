"""ANTs registration (:mod:`mmanat.registration.ants_registration`) and the ANTs baselines.

With antspyx installed: the geometry conversion is exact and a known translation / affine of a
small synthetic volume is recovered in the right direction (template -> target). Without it
(simulated by making ``import ants`` fail): an explicit error naming the install command, and
benchmark rows that say so instead of numbers.
"""
import json
import os
import os.path as osp
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mmanat.evaluation.baselines import (AntsAffineMethod, AntsSyNMethod, IdentityMethod,
                                         default_baselines)
from mmanat.evaluation.benchmark import BenchmarkTable, run_landmark_benchmark
from mmanat.evaluation.cases import LandmarkCase
from mmanat.registration import (ANTS_INSTALL, ants_config, ants_unavailable_reason,
                                 register_ants)
from mmanat.registration.ants_registration import ants_session, import_ants, to_ants
from mmanat.structures import MedicalImage
from mmanat.utils.exceptions import InvalidInputError, MissingDependencyError, MMAnatError

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True, scope='module')
def one_ants_thread():
    """ANTs with one ITK thread in this test session (fixed at its first use), so the
    registrations below are repeatable; without antspyx, nothing."""
    try:
        with ants_session(threads=1) as ants:
            to_ants(MedicalImage(np.zeros((2, 2, 2), np.float32)), ants)
    except MissingDependencyError:
        pass
CENTRES = np.array([[0.0, 0.0, 50.0], [15.0, 20.0, 40.0], [-15.0, 5.0, 65.0],
                    [12.0, -12.0, 62.0], [-10.0, 22.0, 45.0]])
AMPLITUDES, SIGMAS = (1000, 600, 800, 500, 700), (9.0, 6.0, 7.0, 5.0, 6.5)
# a few more points among the blobs, where the intensity constrains the transform
INNER = np.array([[5.0, 8.0, 47.0], [-8.0, 3.0, 58.0], [8.0, 14.0, 44.0]])


def _blobs(linear=np.eye(3), shift=(0.0, 0.0, 0.0), direction=None, shape=(36, 40, 40)):
    """A 2 mm volume (non-zero origin, optional non-trivial direction) of five Gaussian blobs
    moved by the known map ``p -> linear @ p + shift`` (world mm): the value at world ``q`` is
    the unmoved pattern at ``linear^-1 (q - shift)``."""
    spacing, origin = np.array([2.0, 2.0, 2.0]), np.array([-40.0, -30.0, 12.0])
    d = np.eye(3) if direction is None else np.asarray(direction, float)
    if direction is not None:  # keep the volume around the blobs
        origin = np.array([0.0, 8.0, 52.0]) - d @ (spacing * np.array(shape[::-1]) / 2)
    ijk = np.stack(np.meshgrid(*[np.arange(s) for s in shape], indexing='ij'), -1)[..., ::-1]
    world = origin + (ijk * spacing) @ d.T
    back = (world - np.asarray(shift)) @ np.linalg.inv(linear).T
    arr = np.zeros(shape, np.float32)
    for c, amp, sig in zip(CENTRES, AMPLITUDES, SIGMAS):
        arr += amp * np.exp(-np.sum((back - c) ** 2, -1) / (2 * sig ** 2))
    return MedicalImage(arr, spacing=spacing, origin=origin, direction=d, modality='MR')


def _rotation(deg, axis):
    t = np.deg2rad(deg)
    c, s = np.cos(t), np.sin(t)
    i, j = [k for k in range(3) if k != axis]
    r = np.eye(3)
    r[i, i], r[i, j], r[j, i], r[j, j] = c, -s, s, c
    return r


FAST = dict(spacing=None, aff_iterations=(500, 300, 200), aff_shrink_factors=(4, 2, 1),
            aff_smoothing_sigmas=(2, 1, 0), reg_iterations=(20, 10, 0))


# ------------------------------------------------------------------ always (no antspyx needed)
@pytest.fixture
def no_ants(monkeypatch):
    """Make ``import ants`` fail as if antspyx were not installed."""
    monkeypatch.setitem(sys.modules, 'ants', None)


def test_absent_antspyx_gives_explicit_error(no_ants):
    assert ants_unavailable_reason() == f'antspyx not installed ({ANTS_INSTALL})'
    assert ANTS_INSTALL == "pip install -e '.[ants]'"
    img = _blobs(shape=(8, 8, 8))
    with pytest.raises(MissingDependencyError, match=r"pip install -e '\.\[ants\]'") as exc:
        register_ants(img, img, 'SyN', 'quick')
    assert isinstance(exc.value, MMAnatError) and isinstance(exc.value, ImportError)
    with pytest.raises(MissingDependencyError, match='antspyx not installed'):
        AntsAffineMethod('quick')(img, CENTRES, img)


def test_absent_antspyx_rows_say_so(no_ants, tmp_path):
    from mmanat.evaluation.benchmark import write_json
    img = _blobs(shape=(8, 8, 8))
    case = LandmarkCase('c0', img, img, CENTRES, CENTRES, meta=dict(modalities=('MR', 'MR')))
    methods = default_baselines(quick=True, names=['identity', 'ants_affine', 'ants_syn'])
    assert [m.name for m in methods] == ['identity', 'ants_affine', 'ants_syn']
    assert methods[0].__class__ is IdentityMethod and methods[1].unavailable
    logs = []
    table = run_landmark_benchmark('toy', 'Toy', [case], methods, log=logs.append,
                                   group=lambda c: '->'.join(c.meta['modalities']))
    rows = {r[0]: r for r in table.rows}
    msg = "antspyx not installed (pip install -e '.[ants]')"
    assert rows['identity'][2] == pytest.approx(0.0)
    for name in ('ants_affine', 'ants_syn'):
        assert rows[name][:3] == [name, 'MR->MR', msg]
        assert rows[name][3:] == ['-'] * (len(table.columns) - 3)
        assert any(name in line and msg in line for line in logs)
        assert f'{name}: {msg}' in table.notes
    md = table.to_markdown()
    assert f'| ants_syn | MR->MR | {msg} | - |' in md
    data = json.loads(open(write_json([table], str(tmp_path / 'b.json'), 'cmd', {}, 1.0)).read())
    assert data['tables'][0]['rows'][2][2] == msg


def test_unavailable_row_and_options():
    table = BenchmarkTable('t', 'T', ['method', 'CPM', 'MED', 'time'])
    table.add_unavailable_row(['ants_syn'], 'not here')
    table.add_unavailable_row(['ants_syn'], 'not here')
    assert table.rows[0] == ['ants_syn', 'not here', '-', '-'] and table.notes == [
        'ants_syn: not here']
    cfg = ants_config('quick', seed=3, spacing=None, reg_iterations=(5, 0))
    assert cfg['seed'] == 3 and cfg['spacing'] == 4.0 and cfg['reg_iterations'] == (5, 0)
    with pytest.raises(InvalidInputError, match='unknown ANTs registration options'):
        ants_config('quick', iterations=3)
    with pytest.raises(InvalidInputError, match='preset'):
        AntsSyNMethod('fast')
    with pytest.raises(InvalidInputError, match='same length'):
        ants_config(aff_iterations=(10, 10))
    with pytest.raises(InvalidInputError, match='unknown ANTs transform'):
        register_ants(_blobs(shape=(4, 4, 4)), _blobs(shape=(4, 4, 4)), 'BSpline')
    names = [m.name for m in default_baselines(quick=True)]
    assert names == ['identity', 'sitk_affine', 'sitk_bspline', 'ants_affine', 'ants_syn']
    with pytest.raises(InvalidInputError, match='unknown baselines'):
        default_baselines(names=['ants-syn'])


def test_registration_package_does_not_import_ants():
    code = ('import sys, mmanat.registration, mmanat.evaluation.baselines; '
            'print("ants" in sys.modules)')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                         check=True, cwd=REPO_ROOT).stdout
    assert out.strip().splitlines()[-1] == 'False'


# ------------------------------------------------------------------ with antspyx
def test_to_ants_keeps_geometry():
    ants = pytest.importorskip('ants')
    d = _rotation(20, 2) @ np.diag([-1.0, 1.0, 1.0])
    img = _blobs(direction=d, shape=(10, 12, 14))
    img = img.with_array(img.array, spacing=(1.5, 2.0, 3.0))
    a = to_ants(img)
    assert a.shape == (14, 12, 10)  # (x, y, z)
    np.testing.assert_allclose(a.direction, d, atol=1e-12)
    for ijk in ([0, 0, 0], [3, 7, 9], [13, 11, 2]):
        np.testing.assert_allclose(ants.transform_index_to_physical_point(a, tuple(ijk)),
                                   img.index_to_world(np.array([ijk]))[0], atol=1e-4)
        assert a.numpy()[tuple(ijk)] == img.array[ijk[2], ijk[1], ijk[0]]


@pytest.mark.parametrize('transform', ['Affine', 'SyN'])
def test_recovers_translation_in_the_right_direction(transform):
    """Template = fixed, target = moving: template points move by +shift (identity is
    |shift| = 10.2 mm off, the opposite direction twice that)."""
    pytest.importorskip('ants')
    shift = np.array([6.0, -4.0, 7.0])
    template, target = _blobs(), _blobs(shift=shift)
    res = register_ants(template, target, transform, **FAST)
    try:
        pts = np.concatenate([CENTRES, INNER])
        err = np.linalg.norm(res.map_points(pts) - (pts + shift), axis=1)
        assert err.max() < 1.5, err
        back = np.linalg.norm(res.map_points_inverse(pts + shift) - pts, axis=1)
        assert back.max() < 1.5, back
        assert res.seconds > 0 and res.transform_type == transform
        assert res.map_points(np.zeros((0, 3))).shape == (0, 3)
        assert res.map_points(CENTRES[0]).shape == (1, 3)
    finally:
        res.close()
    with pytest.raises(InvalidInputError, match='gone'):
        res.map_points(CENTRES)


def test_affine_recovers_known_affine_with_oblique_direction():
    """A rotation (6 deg), anisotropic scaling (+-6 %) and translation, on an image whose
    direction is not the identity (the geometry conversion must be exact)."""
    pytest.importorskip('ants')
    lin = _rotation(6, 2) @ np.diag([1.06, 0.95, 1.03])
    centre = CENTRES.mean(0)
    shift = centre - lin @ centre + np.array([3.0, 5.0, -4.0])  # about the blobs' centre
    d = _rotation(15, 2)
    template = _blobs(direction=d)
    target = _blobs(lin, shift, direction=d)
    method = AntsAffineMethod('quick', **FAST)
    assert method.unavailable is None
    pts = np.concatenate([CENTRES, INNER])
    pred = method(template, pts, target)
    err = np.linalg.norm(pred - (pts @ lin.T + shift), axis=1)
    assert err.max() < 2.5 and err.mean() < 1.5, err  # identity: 7.2 mm mean
    first = method.last_result
    files = list(first.fwdtransforms)
    assert all(osp.exists(f) for f in files)
    method(template, pts[:1], target)  # a new call drops the previous transform files
    assert not any(osp.exists(f) for f in files)
    method.last_result.close()


def test_2d_images_are_refused():
    pytest.importorskip('ants')
    img = MedicalImage(np.zeros((8, 8), np.float32))
    with pytest.raises(InvalidInputError, match='3D'):
        register_ants(img, img, 'Affine', 'quick')


def test_thread_count_is_fixed_at_first_use_and_runs_repeat():
    ants = pytest.importorskip('ants')
    assert import_ants() is ants
    import mmanat.registration.ants_registration as ar
    in_force = ar._THREADS_IN_FORCE
    assert in_force is not None
    env = os.environ.get('ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS')
    if in_force != '7':
        with pytest.warns(RuntimeWarning, match='first ANTs use'):
            with ants_session(threads=7):
                pass
    assert os.environ.get('ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS') == env  # not touched
    if in_force == '1':  # fixed seed + one thread: bit-for-bit repeatable
        template, target = _blobs(shape=(24, 28, 28)), _blobs(shift=(4.0, 0.0, -3.0),
                                                               shape=(24, 28, 28))
        a = register_ants(template, target, 'Affine', **FAST)
        b = register_ants(template, target, 'Affine', **FAST)
        np.testing.assert_array_equal(a.map_points(CENTRES), b.map_points(CENTRES))
        assert a.info['threads_in_force'] == '1'


@pytest.mark.slow
def test_real_ct_known_translation_affine_and_syn():
    """The sample CT lung1 at 4 mm and a copy whose anatomy moved by a known translation (the
    origin shifted): ANTs affine and SyN find it within ~1-2 mm."""
    pytest.importorskip('ants')
    path = REPO_ROOT / 'data' / 'samples' / 'ct' / 'lung1.nrrd'
    if not path.is_file():
        pytest.skip('sample CT missing (python tools/fetch_sample_data.py)')
    from mmanat.fileio import read_volume
    from mmanat.structures.resample import resample_to_spacing
    ct = resample_to_spacing(read_volume(str(path), modality='CT'), 4.0)
    shift = np.array([7.0, -5.0, 9.0])
    moved = ct.with_array(ct.array.copy(), origin=ct.origin + shift)
    centre = ct.index_to_world(np.array([np.array(ct.shape[::-1]) / 2.0]))[0]
    pts = centre + np.array([[0, 0, 0], [40, 20, 10], [-40, -10, -20], [20, -30, 25.0]])
    for method in (AntsAffineMethod('quick', spacing=None), AntsSyNMethod('quick', spacing=None)):
        err = np.linalg.norm(method(ct, pts, moved) - (pts + shift), axis=1)
        method.last_result.close()
        assert err.max() < 2.0, (method.name, err)
