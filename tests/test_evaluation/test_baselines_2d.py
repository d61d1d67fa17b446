"""The SimpleITK baselines and the benchmark runner on 2D images (radiographs)."""
import numpy as np
import pytest

from mmanat.evaluation.baselines import (AntsAffineMethod, IdentityMethod, SitkAffineMethod,
                                         SitkBSplineFromIdentityMethod, SitkBSplineMethod,
                                         register_affine)
from mmanat.evaluation.benchmark import (method_unavailable, model_image_ndim,
                                         run_landmark_benchmark)
from mmanat.evaluation.cases import deform_case
from mmanat.structures import MedicalImage
from mmanat.utils.exceptions import InvalidInputError

SHIFT = np.array([7.0, -5.0])  # mm


def _blobs(shift=(0.0, 0.0)):
    """A 100 x 90 image at 2 mm with four Gaussian blobs of different brightness and size,
    moved by ``shift`` mm (world)."""
    yy, xx = np.mgrid[0:100, 0:90].astype(np.float64)
    world = np.stack([xx * 2.0 - 90.0, yy * 2.0 - 100.0], -1)
    centres = np.array([[0.0, 0.0], [35.0, 40.0], [-40.0, 25.0], [20.0, -50.0]])
    arr = np.zeros(yy.shape, np.float32)
    for c, amp, sig in zip(centres + np.asarray(shift), (1000, 600, 800, 700),
                           (14.0, 9.0, 11.0, 8.0)):
        arr += amp * np.exp(-np.sum((world - c) ** 2, -1) / (2 * sig ** 2))
    return MedicalImage(arr, spacing=2.0, origin=(-90.0, -100.0), modality='XR'), centres


def test_affine_2d_recovers_translation_direction():
    template, centres = _blobs()
    target, _ = _blobs(SHIFT)
    res = register_affine(template, target, preset='quick', spacing=None, threads=1)
    assert res.transform.GetDimension() == 2
    pred = res.map_points(centres)
    assert pred.shape == (4, 2)
    err = np.linalg.norm(pred - (centres + SHIFT), axis=1)
    assert err.max() < 2.0, (pred - centres, err)  # identity: 8.6 mm off, reversed: 17.2


def test_affine_and_bspline_beat_identity_on_a_deformed_copy():
    template, _ = _blobs()
    case, _ = deform_case(template, np.random.default_rng(0), n_points=30, erode_mm=4.0,
                          edge_margin_mm=6.0, max_rotation_deg=6.0, max_translation_mm=8.0,
                          intensity_strength=0.5)
    assert case.ndim == 2 and len(case.template_points) >= 10

    def mre(method):
        pred = method(case.template, case.template_points, case.target)
        assert pred.shape == case.target_points.shape
        return float(np.linalg.norm(pred - case.target_points, axis=1).mean())

    identity = mre(IdentityMethod())
    affine = mre(SitkAffineMethod('quick', spacing=None, threads=1))
    bspline = mre(SitkBSplineMethod('quick', spacing=None, threads=1))
    from_identity = mre(SitkBSplineFromIdentityMethod('quick', spacing=None, threads=1))
    assert identity > 4.0, identity
    assert affine < 0.5 * identity, (affine, identity)
    assert bspline < 0.5 * identity, (bspline, identity)
    assert np.isfinite(from_identity)


def test_2d_and_3d_images_do_not_mix():
    template, _ = _blobs()
    vol = MedicalImage(np.zeros((8, 8, 8), np.float32), modality='CT')
    with pytest.raises(InvalidInputError, match='2D target .* 3D template|3D target .* 2D'):
        register_affine(template, vol, preset='quick')


class _Planar:
    """Stands in for a model holding a ``Planar`` module (mmanat.models.utils)."""

    def modules(self):
        return [self, type('Planar', (), {})()]


class _VolumeModelMethod:
    name = 'volume_model'
    image_ndim = 3

    def __call__(self, template, points, target):  # pragma: no cover - must not be called
        raise AssertionError('a 3D method was run on 2D images')


def test_dimension_of_methods_and_models():
    assert method_unavailable(IdentityMethod(), [2, 3]) is None
    assert method_unavailable(_VolumeModelMethod(), [3]) is None
    assert method_unavailable(_VolumeModelMethod(), [2]) == \
        'volumes only: not run on 2D images'
    ants = AntsAffineMethod('quick')
    assert ants.image_ndim == 3 and method_unavailable(ants, [2]) is not None
    assert model_image_ndim(_Planar()) == 2
    assert model_image_ndim(object()) == 3
    two_d = type('M', (), {'image_ndim': 2})()
    assert model_image_ndim(two_d) == 2


def test_runner_on_2d_cases_skips_volume_methods():
    template, _ = _blobs()
    case, deformation = deform_case(template, np.random.default_rng(1), n_points=12,
                                    erode_mm=4.0, edge_margin_mm=6.0, name='toy2d')

    class Oracle:
        name = 'oracle'

        def __call__(self, tmpl, points, target):
            return deformation.template_to_target(points)

    table = run_landmark_benchmark('toy', 'Toy 2D', [case],
                                   [Oracle(), IdentityMethod(), _VolumeModelMethod()],
                                   log=lambda m: None)
    rows = {r[0]: r for r in table.rows}
    assert rows['oracle'][1] == pytest.approx(0.0, abs=1e-6)
    assert rows['oracle'][4] == pytest.approx(1.0) and rows['oracle'][6] == len(case.names)
    assert rows['identity'][1] > 0.5
    assert rows['volume_model'][1] == 'volumes only: not run on 2D images'
    assert any('volume_model: volumes only' in n for n in table.notes)
    assert table.details['case_info'][0]['template_shape'] == list(template.shape)
