"""Pinned outputs of the synthetic generator.

Shipped checkpoints and the synthetic benchmark cases depend on ``generate_subject`` giving
the same subject for a seed. These values were recorded from the generator before it was
split into region modules (and checked bit-identical after); if this test fails, a change
altered the anatomy recipe, the order of its random draws or the renderers. Do not update
the pinned values unless that change is intended (and the benchmark cases are regenerated).
"""
import hashlib

import numpy as np
import pytest

from mmanat.datasets.synthetic import generate_subject, render_ct, render_mr

# seed 4 at 12 mm with two lesions: (27, 24, 29) voxels, < 1 s
LABELS_SHA256 = '6af1a4a949d687927c1fd41a34559befa84c1446b22223f82be6465c566bd5a0'
LABEL_COUNTS = [
    7041, 241, 1895, 1568, 1521, 1926, 1537, 1614, 15, 3, 2, 341, 48, 18, 27, 346, 0, 29, 0,
    117, 0, 0, 0, 0, 0, 0, 0, 27, 10, 31, 26, 106, 84, 12, 12, 43, 34, 0, 0, 0, 0, 0, 1, 0, 0,
    0, 0, 0, 0, 0, 11, 11, 9, 10, 9, 9, 12, 7, 15, 12, 12
]
ORIGIN = [-148.375, -227.25, -130.125]
LANDMARKS = {
    'carina': [11.407764159904971, -111.64578750209097, 41.50622869429789],
    'liver_centre': [-42.078650550291144, -145.2610434470118, -154.06047455545593],
    'vertebral_body_L3': [4.401525275772328, -126.48471709321404, -268.7991095736366],
    'kidney_left_upper_pole': [46.199891583456214, -97.84190622438858, -152.6416555322278],
}
LESIONS = [([-50.132092724769024, -165.99209759482875, -136.7927342922404], 10.580034040393912),
           ([47.1266998873859, -94.99932121833443, -167.33378672734], 6.518945757547143)]


@pytest.fixture(scope='module')
def subject():
    return generate_subject(4, spacing=12.0, lesions=2)


def _sha256(arr):
    m = hashlib.sha256(str((arr.dtype.str, arr.shape)).encode())
    m.update(np.ascontiguousarray(arr).tobytes())
    return m.hexdigest()


def test_label_map_is_pinned(subject):
    arr = subject.labels.array
    assert arr.shape == (27, 24, 29) and arr.dtype == np.int16
    assert subject.labels.origin.tolist() == ORIGIN
    assert np.bincount(arr.ravel().astype(np.int64)).tolist() == LABEL_COUNTS
    assert _sha256(arr) == LABELS_SHA256


def test_landmarks_lesions_and_meta_are_pinned(subject):
    for name, xyz in LANDMARKS.items():
        np.testing.assert_allclose(subject.landmarks[name], xyz, rtol=0, atol=1e-9)
    assert len(subject.lesions) == len(LESIONS)
    for (c, r), (c0, r0) in zip(subject.lesions, LESIONS):
        np.testing.assert_allclose(c, c0, rtol=0, atol=1e-9)
        assert r == pytest.approx(r0, abs=1e-12)
    meta = subject.meta
    assert meta['table'] is True and meta['lesion_organs'] == ['liver', 'kidney_left']
    assert meta['render_seed'] == 10268939971369464516
    assert meta['fat_mm'] == pytest.approx(25.111466301491298, abs=1e-12)
    assert meta['height_scale'] == pytest.approx(1.080707968829615, abs=1e-12)
    assert meta['z_carina'] == pytest.approx(607.310585934287, abs=1e-9)


def test_default_renderings_are_pinned(subject):
    ct = render_ct(subject)
    assert ct.meta['contrast'] is True
    a = ct.array.astype(np.float64)
    assert a.mean() == pytest.approx(-532.2603424176938, abs=1e-3)
    assert a.std() == pytest.approx(384.7675012831589, abs=1e-3)
    assert ct.array[5, 10, 12] == pytest.approx(-370.4495, abs=1e-3)
    mr = render_mr(subject)
    b = mr.array.astype(np.float64)
    assert b.mean() == pytest.approx(237.29211318645295, abs=1e-3)
    assert b.std() == pytest.approx(277.219908583092, abs=1e-3)
    assert mr.array[5, 10, 12] == pytest.approx(122.71918, abs=1e-3)
