"""Synthetic torso phantoms: landmarks, determinism, CT/MR/X-ray renderings, dataset."""
import numpy as np
import pytest
from scipy import ndimage

from mmanat.datasets.synthetic import (LABEL_NAMES, LANDMARK_NAMES, LANDMARK_PARENTS,
                                       STRUCTURE_BY_NAME, STRUCTURES, VERTEBRAE,
                                       generate_subject, render_ct, render_mr, render_xray)
from mmanat.structures import MedicalImage
from mmanat.utils.exceptions import InvalidInputError

COARSE = dict(spacing=4.0)


@pytest.fixture(scope='module')
def subject():
    """One coarse (4 mm) subject over the whole torso, with lesions."""
    return generate_subject(7, z_range='full', lesions=3, **COARSE)


def _parent_labels():
    return np.array([STRUCTURE_BY_NAME[LANDMARK_PARENTS[n]].label for n in LANDMARK_NAMES])


def test_landmarks_inside_parent_many_subjects():
    # analytic check (labels evaluated exactly at the landmark), on a tiny grid: fast
    want = _parent_labels()
    for seed in range(12):
        s = generate_subject(seed, shape=(2, 2, 2), check_landmarks=False)
        got = s.label_at(s.landmarks.xyz)
        bad = [(n, LABEL_NAMES[g]) for n, g, w in zip(LANDMARK_NAMES, got, want) if g != w]
        assert not bad, f'seed {seed}: landmarks outside their parent: {bad}'


def test_landmarks_inside_parent_on_the_label_map(subject):
    lab = subject.labels
    idx = np.round(lab.world_to_array_index(subject.landmarks.xyz)).astype(int)
    assert np.all(subject.landmarks.extra['in_fov'])  # full torso: all inside the grid
    got = lab.array[idx[:, 0], idx[:, 1], idx[:, 2]]
    bad = [(n, LABEL_NAMES[g]) for n, g, w in zip(LANDMARK_NAMES, got, _parent_labels())
           if g != w]
    assert not bad, bad


def test_landmark_fallback_moves_into_parent():
    from mmanat.datasets.synthetic.lesions import ensure_inside_parents
    s = generate_subject(3, shape=(2, 2, 2))
    assert s.meta['adjusted_landmarks'] == []
    lm = s.landmarks.xyz.copy()
    i = LANDMARK_NAMES.index('heart_centre')
    ray = lm[i] + np.arange(0.0, 150.0)[:, None] * np.array([1.0, 0.0, 0.0])
    labels = s.label_at(ray)
    lm[i] = ray[np.argmax(labels != labels[0]) + 4]  # 4 mm outside the heart
    moved, adjusted = ensure_inside_parents(s.model, lm, [])
    assert adjusted == ['heart_centre']
    assert s.label_at(moved[i:i + 1])[0] == STRUCTURE_BY_NAME['heart'].label
    assert 0 < np.linalg.norm(moved[i] - lm[i]) <= 8.0
    assert np.array_equal(np.delete(moved, i, 0), np.delete(lm, i, 0))


def test_names_identical_and_enough_landmarks():
    a = generate_subject(1, shape=(2, 2, 2))
    b = generate_subject(2, shape=(2, 2, 2), z_range='full')
    assert a.landmarks.names == b.landmarks.names == list(LANDMARK_NAMES)
    assert len(LANDMARK_NAMES) >= 24
    assert a.label_names == b.label_names == LABEL_NAMES
    assert len({s.label for s in STRUCTURES}) == len(STRUCTURES)
    assert sum(f'vertebra_{v}' in LABEL_NAMES.values() for v in VERTEBRAE) == 17
    # different subjects really differ
    assert not np.allclose(a.landmarks.xyz, b.landmarks.xyz)


def test_geometry_and_landmark_world_convention(subject):
    lab = subject.labels
    assert lab.array.dtype == np.int16 and lab.ndim == 3
    assert np.allclose(lab.spacing, 4.0) and np.allclose(lab.direction, np.eye(3))
    assert np.linalg.norm(lab.origin) > 100  # a real, non-trivial origin
    p = subject.landmarks
    # LPS: the head is at high z, the patient's left at +x, posterior at +y
    assert p['lung_apex_left'][2] > p['bladder_centre'][2]
    assert p['vertebral_body_T1'][2] > p['vertebral_body_L5'][2]
    assert p['kidney_left_centre'][0] > p['kidney_right_centre'][0]
    assert p['spleen_centre'][0] > p['liver_centre'][0]
    assert p['vertebral_body_L1'][1] > p['bladder_centre'][1]  # spine posterior
    assert p['sternum_centre'][1] < p['vertebral_body_T6'][1]  # sternum anterior
    for side in ('left', 'right'):
        assert p[f'kidney_{side}_upper_pole'][2] > p[f'kidney_{side}_lower_pole'][2]


def test_label_at_agrees_with_the_grid(subject):
    rng = np.random.default_rng(0)
    lab = subject.labels
    idx = np.stack([rng.integers(0, n, 3000) for n in lab.shape], 1)
    world = lab.array_index_to_world(idx)
    extra = subject.model.lesion_items
    agree = np.mean(subject.model.label_at(world, extra) == lab.array[tuple(idx.T)])
    assert agree > 0.995


def test_lesions_are_recorded_inside_organs(subject):
    assert 1 <= len(subject.lesions) <= 3
    lesion = STRUCTURE_BY_NAME['lesion'].label
    for (centre, radius), organ in zip(subject.lesions, subject.meta['lesion_organs']):
        assert organ in ('liver', 'lung_left', 'lung_right', 'kidney_left', 'kidney_right',
                         'spleen')
        i = np.round(subject.labels.world_to_array_index(centre)).astype(int)
        if radius >= 3.0:  # at least one 4 mm voxel centre within the sphere
            assert subject.labels.array[tuple(i)] == lesion


def test_deterministic_for_a_seed():
    a = generate_subject(11, **COARSE)
    b = generate_subject(11, **COARSE)
    assert np.array_equal(a.labels.array, b.labels.array)
    assert a.labels.same_geometry(b.labels)
    assert np.array_equal(a.landmarks.xyz, b.landmarks.xyz)
    single = generate_subject(11, threads=1, **COARSE)  # threads do not change the result
    assert np.array_equal(a.labels.array, single.labels.array)
    assert np.array_equal(render_ct(a).array, render_ct(b).array)
    assert np.array_equal(render_mr(a, preset='T2').array, render_mr(b, preset='T2').array)
    c = generate_subject(12, **COARSE)
    assert not np.array_equal(a.labels.array, c.labels.array)
    # the anatomy does not depend on the grid: same landmarks at another spacing
    d = generate_subject(11, spacing=5.0)
    assert np.allclose(a.landmarks.xyz, d.landmarks.xyz)


@pytest.mark.parametrize('contrast', [False, True])
def test_ct_values_exactly_in_configured_ranges(subject, contrast):
    ct = render_ct(subject, rng=3, contrast=contrast, noise=False, blur=False, cortex=False,
                   texture=False)
    assert ct.modality == 'CT' and ct.same_geometry(subject.labels)
    lab = subject.labels.array
    for s in STRUCTURES:
        vals = ct.array[lab == s.label]
        if vals.size == 0:
            continue
        lo, hi = s.hu_range(contrast)
        assert np.all(vals >= lo - 1e-3) and np.all(vals <= hi + 1e-3), s.name
        assert np.ptp(vals) < 1e-3  # one value per structure
    assert ct.meta['contrast'] is contrast


def test_ct_default_render_medians_in_ranges(subject):
    # noise and partial-volume blur keep each structure's median in its range (bone cortex
    # is checked separately: at 4 mm a vertebra is too thin for a cortex-free interior)
    ct = render_ct(subject, rng=5, cortex=False)
    lab = subject.labels.array
    contrast = ct.meta['contrast']
    checked = 0
    for s in STRUCTURES:
        mask = lab == s.label
        if s.name == 'background' or s.kind == 'gut':  # gut: gas/fat texture, see below
            continue
        # two voxels away from partial volume and bone cortex
        interior = ndimage.binary_erosion(mask, iterations=2)
        if interior.sum() < 20:
            continue
        lo, hi = s.hu_range(contrast)
        med = float(np.median(ct.array[interior]))
        assert lo - 15 <= med <= hi + 15, (s.name, med, (lo, hi))
        checked += 1
    assert checked >= 18
    # textures exist: bowel gas, with mostly soft-tissue content
    for name in ('colon', 'small_bowel'):
        vals = ct.array[lab == STRUCTURE_BY_NAME[name].label]
        assert 0.02 < np.mean(vals < -500) < 0.5, name
    # bone cortex brighter than the cancellous interior
    ct = render_ct(subject, rng=5)
    spine = lab == STRUCTURE_BY_NAME['vertebra_L3'].label
    surface = spine & ~ndimage.binary_erosion(spine)
    assert np.median(ct.array[surface]) > np.median(ct.array[spine & ~surface]) + 50
    assert ct.array.min() >= -1024 and ct.array.max() <= 3071


def test_mr_same_grid_and_presets(subject):
    ct = render_ct(subject)
    t1 = render_mr(subject, preset='T1', noise=False, bias=False, blur=False)
    t2 = render_mr(subject, preset='T2', noise=False, bias=False, blur=False)
    rnd = render_mr(subject, preset='random')
    for im in (t1, t2, rnd):
        assert im.modality == 'MR' and im.same_geometry(ct) and im.same_geometry(subject.labels)
        assert im.array.dtype == np.float32
    lab = subject.labels.array

    def med(im, name):
        return np.median(im.array[lab == STRUCTURE_BY_NAME[name].label])

    # fluid: dark on T1, bright on T2 (relative to muscle); fat bright on T1
    assert med(t1, 'bladder') < med(t1, 'muscle') < med(t1, 'subcutaneous_fat')
    assert med(t2, 'bladder') > med(t2, 'muscle')
    assert med(t1, 'lung_left') < 0.1 * med(t1, 'subcutaneous_fat')
    # bowel gas lies in the same voxels in the CT and the MR of a subject (aligned pair)
    ct_flat = render_ct(subject, noise=False, blur=False)
    gas = (ct_flat.array < -900) & (lab == STRUCTURE_BY_NAME['colon'].label)
    assert gas.sum() > 5 and np.allclose(t2.array[gas], 20.0)
    with pytest.raises(InvalidInputError, match='preset'):
        render_mr(subject, preset='FLAIR')


def test_xray_geometry_and_landmark_projection(subject):
    ct = render_ct(subject, rng=1)
    xr, pts = render_xray(ct, subject.landmarks)
    assert xr.modality == 'XR' and xr.ndim == 2
    nz, _, nx = ct.shape
    assert xr.shape == (nz, nx)
    assert np.allclose(xr.spacing, [ct.spacing[0], ct.spacing[2]])
    assert pts.names == subject.landmarks.names and pts.xyz.shape == (len(pts), 2)
    # re-project: 3D landmark -> CT voxel (i, j, k) -> radiograph pixel (i, nz - 1 - k)
    ijk = ct.world_to_index(subject.landmarks.xyz)
    expected = np.stack([ijk[:, 0], nz - 1 - ijk[:, 2]], 1)
    got = xr.world_to_index(pts.xyz)
    assert np.max(np.abs(got - expected)) < 1.0
    assert np.max(np.abs(got - expected)) < 1e-6  # parallel projection: exact
    # dark air, bright bone: the spine column is brighter than the air beside the body
    col = int(round(got[pts.index('vertebral_body_L3'), 0]))
    row = int(round(got[pts.index('vertebral_body_L3'), 1]))
    assert xr.array[row, col] > 0.6 and xr.array[row, 0] < 0.05
    # the lungs are darker than the liver in projection
    r_l, c_l = got[pts.index('lung_apex_left'), ::-1].round().astype(int) + [8, 0]
    r_h, c_h = got[pts.index('liver_centre'), ::-1].round().astype(int)
    assert xr.array[r_l, c_l] < xr.array[r_h, c_h]


def test_xray_of_a_flipped_volume_is_the_same(subject):
    ct = render_ct(subject, rng=1)
    xr, pts = render_xray(ct, subject.landmarks)
    # the same volume stored with the z axis reversed (direction diag(1, 1, -1))
    top = ct.index_to_world([[0, 0, ct.shape[0] - 1]])[0]
    flipped = MedicalImage(ct.array[::-1].copy(), spacing=ct.spacing, origin=top,
                           direction=np.diag([1.0, 1.0, -1.0]), modality='CT')
    xr2, pts2 = render_xray(flipped, subject.landmarks)
    assert np.allclose(xr2.array, xr.array) and np.allclose(xr2.origin, xr.origin)
    assert np.allclose(xr2.world_to_index(pts2.xyz), xr.world_to_index(pts.xyz))
    oblique = MedicalImage(ct.array, spacing=ct.spacing,
                           direction=[[0, 1, 0], [1, 0, 0], [0, 0, 1]])
    with pytest.raises(InvalidInputError, match='axis-aligned'):
        render_xray(oblique)


def test_bad_arguments():
    with pytest.raises(InvalidInputError, match='spacing'):
        generate_subject(0, spacing=(2.0, -1.0, 2.0))
    with pytest.raises(InvalidInputError, match='z_range'):
        generate_subject(0, z_range='middle')


def test_dataset_is_lazy_and_getitem_works(monkeypatch):
    from mmanat.datasets.synthetic import subject as subject_module
    from mmanat.registry import DATASETS
    calls = []
    real = subject_module.generate_subject

    def counting(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(subject_module, 'generate_subject', counting)
    cfg = dict(type='SyntheticSubjectDataset', num_subjects=1000, base_seed=40,
               modalities=('CT', 'MR'), spacing=6.0, aligned_pair=True,
               subject_kwargs=dict(lesions=0))
    ds = DATASETS.build(cfg)
    assert len(ds) == 1000 and calls == []  # nothing generated up front
    item = ds[3]
    assert len(calls) == 1 and calls[0][0] == 43
    for key in ('image', 'label', 'modality', 'landmarks', 'subject_id', 'label_names'):
        assert key in item
    assert item['modality'] in ('CT', 'MR') and item['image'].modality == item['modality']
    assert item['image'].same_geometry(item['label'])
    assert item['pair_image'].same_geometry(item['image'])
    assert item['pair_modality'] != item['modality']
    assert item['subject_id'] == 'synthetic_000043'
    assert item['landmarks'].names == list(LANDMARK_NAMES)
    again = DATASETS.build(cfg)[3]
    assert again['modality'] == item['modality']
    assert np.array_equal(again['image'].array, item['image'].array)
    # per-sample modality choice: both modalities occur
    mods = {ds._choose(40 + i)[0] for i in range(20)}
    assert mods == {'CT', 'MR'}
    lazy = DATASETS.build(dict(cfg, lazy_init=True))
    assert not lazy._fully_initialized
    with pytest.raises(InvalidInputError, match='modalities'):
        DATASETS.build(dict(cfg, modalities=('PET', )))
