"""render_ct / render_mr / render_xray on a tiny hand-made label map (no phantom needed)."""
import numpy as np
import pytest

from mmanat.datasets.synthetic import (LABEL_NAMES, MU_WATER_PER_MM, STRUCTURE_BY_NAME,
                                       STRUCTURES, SyntheticSubject, render_ct, render_mr,
                                       render_xray)
from mmanat.structures import MedicalImage, PointSet
from mmanat.utils.exceptions import InvalidInputError

SPACING = (2.0, 3.0, 4.0)  # x, y, z mm
ORIGIN = (-20.0, -30.0, 100.0)


def L(name):
    return STRUCTURE_BY_NAME[name].label


def _subject(render_seed=5):
    """(z, y, x) = (12, 14, 16): air around a body of muscle with a liver block, a bone block
    (5^3: one interior voxel layer of 3^3), a colon block and a bladder block."""
    lab = np.zeros((12, 14, 16), np.int16)
    lab[1:11, 1:13, 1:15] = L('muscle')
    lab[2:6, 2:7, 2:7] = L('liver')
    lab[6:11, 7:12, 2:7] = L('vertebra_L3')
    lab[2:6, 7:12, 8:14] = L('colon')
    lab[6:10, 2:6, 9:13] = L('bladder')
    labels = MedicalImage(lab, spacing=SPACING, origin=ORIGIN,
                          meta={'kind': 'label_map', 'synthetic': True})
    landmarks = PointSet([[-10.0, -20.0, 120.0], [0.0, 0.0, 130.0]], names=['a', 'b'])
    return SyntheticSubject(labels=labels, label_names=dict(LABEL_NAMES), landmarks=landmarks,
                            lesions=[], meta={'render_seed': render_seed})


def _plain(**kw):
    return dict(noise=False, blur=False, cortex=False, texture=False, **kw)


@pytest.mark.parametrize('contrast', [False, True])
def test_ct_one_value_per_structure_in_range(contrast):
    subj = _subject()
    ct = render_ct(subj, rng=0, contrast=contrast, **_plain())
    assert ct.modality == 'CT' and ct.array.dtype == np.float32
    assert ct.same_geometry(subj.labels) and ct.shape == (12, 14, 16)
    assert ct.meta['contrast'] is contrast and ct.meta['noise_sigma_hu'] == 0.0
    lab = subj.labels.array
    for s in STRUCTURES:
        vals = ct.array[lab == s.label]
        if vals.size == 0:
            continue
        lo, hi = s.hu_range(contrast)
        assert np.ptp(vals) == 0 and lo <= vals[0] <= hi, s.name
        assert vals[0] == np.float32(ct.meta['tissue_hu'][s.name])
    assert np.all(ct.array[lab == 0] == -1000.0)
    if contrast:  # enhanced liver is brighter than its native range
        assert ct.meta['tissue_hu']['liver'] >= STRUCTURE_BY_NAME['liver'].hu_contrast[0]


def test_ct_deterministic_per_subject_and_seed():
    a, b = _subject(), _subject()
    assert np.array_equal(render_ct(a).array, render_ct(b).array)  # from the render seed
    assert not np.array_equal(render_ct(a).array, render_ct(_subject(6)).array)
    assert np.array_equal(render_ct(a, rng=3).array,
                          render_ct(a, rng=np.random.default_rng(3)).array)
    assert not np.array_equal(render_ct(a, rng=3).array, render_ct(a, rng=4).array)


def test_ct_cortex_and_bowel_gas():
    subj = _subject()
    lab = subj.labels.array
    flat = render_ct(subj, rng=1, **_plain())
    ct = render_ct(subj, rng=1, noise=False, blur=False, cortex=True, texture=True)
    bone = lab == L('vertebra_L3')
    interior = np.zeros_like(bone)
    interior[7:10, 8:11, 3:6] = True  # the 3^3 core of the 5^3 block
    boost = ct.array[bone & ~interior] - flat.array[bone & ~interior]
    assert np.ptp(boost) < 1e-3 and 350.0 <= boost[0] <= 650.0  # one cortex offset
    assert np.array_equal(ct.array[interior], flat.array[interior])
    colon = lab == L('colon')
    gas = colon & (ct.array == -950.0)
    assert 0.2 < gas.sum() / colon.sum() < 0.5  # ~35 % of colon voxels hold gas
    others = ~colon & (lab != L('small_bowel'))
    assert not np.any(ct.array[others] == -950.0)  # gas only inside bowel


def test_ct_noise_level_and_clipping():
    subj = _subject()
    flat = render_ct(subj, rng=2, **_plain())
    noisy = render_ct(subj, rng=2, noise=True, blur=False, cortex=False, texture=False)
    sigma = noisy.meta['noise_sigma_hu']
    assert 8.0 <= sigma <= 20.0 and noisy.meta['blur_sigma_vox'] == 0.0
    resid = (noisy.array - flat.array)[subj.labels.array == L('muscle')]
    assert abs(resid.std() / sigma - 1.0) < 0.1 and abs(resid.mean()) < 0.2 * sigma
    full = render_ct(subj, rng=2)
    assert full.array.min() >= -1024.0 and full.array.max() <= 3071.0


def test_ct_rejects_labels_outside_the_table():
    subj = _subject()
    subj.labels.array[0, 0, 0] = 999
    with pytest.raises(InvalidInputError, match='outside the synthetic structure table'):
        render_ct(subj)


def test_mr_presets_and_shared_gas():
    subj = _subject()
    lab = subj.labels.array
    kw = dict(bias=False, noise=False, blur=False)
    t1 = render_mr(subj, rng=0, preset='T1', **kw)
    t2 = render_mr(subj, rng=0, preset='T2', **kw)
    assert t1.modality == 'MR' and t1.array.dtype == np.float32 and t1.same_geometry(
        subj.labels)

    def val(im, name):
        vals = im.array[lab == L(name)]
        return vals[0]

    for name in ('muscle', 'liver', 'bladder'):
        s = STRUCTURE_BY_NAME[name]
        assert abs(val(t1, name) - 1000 * s.t1) < 200 and abs(val(t2, name) - 1000 * s.t2) < 200
    assert val(t1, 'bladder') < val(t1, 'muscle') and val(t2, 'bladder') > val(t2, 'muscle')
    assert np.all(t1.array[lab == 0] == 0.0)
    # the gas pockets of the subject's CT are dark in its MR (same voxels)
    ct = render_ct(subj, noise=False, blur=False, cortex=False)
    gas = ct.array == -950.0
    assert gas.any() and np.allclose(t2.array[gas], 20.0)
    assert np.all(t2.array[(lab == L('colon')) & ~gas] > 20.0)


def test_mr_random_preset_noise_and_errors():
    subj = _subject()
    rnd = render_mr(subj, rng=1, preset='random', bias=False, noise=False, blur=False)
    assert set(rnd.meta['tissue_intensity']) == {s.name for s in STRUCTURES}
    for s in STRUCTURES:
        v = rnd.meta['tissue_intensity'][s.name]
        if s.kind in ('air', 'device') and not s.name.startswith('lung'):
            assert v == 0.0
        elif s.name.startswith('lung'):
            assert 0.0 <= v <= 0.15
    noisy = render_mr(subj, rng=1)  # Rician magnitude noise: never negative
    assert noisy.array.min() >= 0.0 and noisy.array[subj.labels.array == 0].max() > 0.0
    with pytest.raises(InvalidInputError, match="MR preset 'PD' unknown"):
        render_mr(subj, preset='PD')


def test_masks_are_computed_once_per_label_map():
    subj = _subject()
    render_ct(subj)
    masks = subj._cache['masks']
    render_mr(subj)
    assert subj._cache['masks'] is masks  # shared by the CT and the MR of a subject


def test_xray_exact_line_integral_and_geometry():
    arr = np.full((4, 5, 6), -1000.0, np.float32)  # (z, y, x), air
    arr[:, :, 2] = 0.0  # a water column along y at x index 2
    arr[1, 1:3, 4] = 1000.0  # two voxels of HU 1000 (mu = 2 mu_water)
    ct = MedicalImage(arr, spacing=(1.5, 2.0, 2.5), origin=(10.0, 0.0, -5.0), modality='CT')
    pts = PointSet([[13.0, 4.0, -2.5]], names=['p'], extra={'in_fov': [True]})
    xr, p2 = render_xray(ct, pts, window=1.0, gamma=1.0)
    assert xr.modality == 'XR' and xr.shape == (4, 6) and xr.array.dtype == np.float32
    np.testing.assert_allclose(xr.spacing, [1.5, 2.5])
    np.testing.assert_allclose(xr.origin, [10.0, -5.0 + 3 * 2.5])  # (x, z) of the top row
    np.testing.assert_allclose(xr.direction, [[1, 0], [0, -1]])
    water = 5 * 2.0 * MU_WATER_PER_MM  # 5 voxels of 2 mm
    np.testing.assert_allclose(xr.array[:, 2], water, rtol=1e-6)
    np.testing.assert_allclose(xr.array[:, [0, 1, 3, 5]], 0.0, atol=1e-7)
    # row 0 is the highest z: z index 1 is row 2
    np.testing.assert_allclose(xr.array[2, 4], 2 * 2.0 * 2 * MU_WATER_PER_MM, rtol=1e-6)
    assert xr.array[[0, 1, 3], 4].max() < 1e-7
    assert p2.names == ['p'] and np.allclose(p2.xyz, [[13.0, -2.5]])
    assert p2.extra == {'in_fov': [True]}
    # excluded voxels count as air
    excl = np.zeros(arr.shape, bool)
    excl[:, :, 2] = True
    xr2, none = render_xray(ct, exclude=excl, window=1.0, gamma=1.0)
    assert none is None and np.allclose(xr2.array[:, 2], 0.0, atol=1e-7)


def test_xray_default_window_and_errors():
    subj = _subject()
    ct = render_ct(subj, rng=0)
    xr, _ = render_xray(ct)
    assert 0.0 <= xr.array.min() and xr.array.max() <= 1.0
    assert xr.meta['line_integral_window'] > 0 and xr.meta['gamma'] == 1.6
    with pytest.raises(InvalidInputError, match='exclude mask shape'):
        render_xray(ct, exclude=np.zeros((2, 2, 2), bool))
    with pytest.raises(InvalidInputError, match='3D CT'):
        render_xray(MedicalImage(np.zeros((4, 4), np.float32)))
    rotated = ct.with_array(ct.array)
    rotated.direction = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    with pytest.raises(InvalidInputError, match='axis-aligned'):
        render_xray(rotated)
