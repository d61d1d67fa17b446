"""The one body-mask rule (:mod:`mmanat.structures.body`): thresholds per modality, the
optional largest-component step, 2D/3D input and errors. The morphology, small-object and
hole-filling steps are tested through the ``BodyMask`` transform in
tests/test_datasets/test_transforms/test_body_mask.py."""
import numpy as np
import pytest

from mmanat.structures import MedicalImage, body_bbox, body_mask
from mmanat.structures.body import (BENCHMARK_CASE_MASK, CT_AIR, CT_BBOX_THRESHOLD,
                                         CT_BODY_THRESHOLD, air_value, body_threshold)
from mmanat.utils.exceptions import InvalidInputError


def _two_bodies():
    """Two separate soft-tissue boxes in air (CT): a big one and a small one (both larger than
    the in-plane minimum object size used below)."""
    arr = np.full((6, 64, 64), -1000, np.int16)
    arr[:, 8:40, 8:40] = 40  # 32 x 32 px per slice
    arr[:, 48:60, 44:60] = 40  # 12 x 16 px per slice
    return MedicalImage(arr, spacing=(1.0, 1.0, 2.0), modality='CT')


def test_thresholds_per_modality():
    arr = np.concatenate([np.zeros(300), np.full(700, 100.0)]).astype(np.float32)
    assert body_threshold(arr, 'CT') == CT_BODY_THRESHOLD == -300.0
    assert body_threshold(arr, 'ct', ct_default=CT_BBOX_THRESHOLD) == -500.0
    assert 0.0 <= body_threshold(arr, 'MR') < 100.0  # Otsu between the two classes
    assert body_threshold(arr, None) == body_threshold(arr, 'MR')  # unknown: Otsu too
    assert body_threshold(arr, 'CT', threshold=7.0) == 7.0
    assert body_threshold(np.full(5, 3.0), 'MR') == 3.0  # flat image: nothing above it


def test_largest_component_keeps_only_the_biggest_body():
    image = _two_bodies()
    both = body_mask(image, min_object_size=50)
    assert both[:, 20, 20].all() and both[:, 54, 50].all()
    big = body_mask(image, min_object_size=50, largest_component=True)
    assert big[:, 20, 20].all() and not big[:, 48:60, 44:60].any()
    np.testing.assert_array_equal(big[:, :44], both[:, :44])


def test_arrays_modality_override_and_errors():
    image = _two_bodies()
    # a plain array has no modality: Otsu, which separates -1000 from 40 as well
    np.testing.assert_array_equal(body_mask(image.array, min_object_size=50),
                                  body_mask(image, min_object_size=50))
    np.testing.assert_array_equal(body_mask(image.array, modality='CT', min_object_size=50),
                                  body_mask(image, min_object_size=50))
    with pytest.raises(InvalidInputError, match='2D or 3D'):
        body_mask(np.zeros((2, 3, 4, 5)))
    with pytest.raises(InvalidInputError, match='no voxel above'):
        body_bbox(MedicalImage(np.full((4, 4, 4), -1000, np.int16), modality='CT'))
    assert body_bbox(image) == (slice(0, 6), slice(8, 60), slice(8, 60))
    assert air_value(image) == CT_AIR
    assert air_value(image.with_array(image.array + 5, modality='MR')) == -995.0


def _chest(open_airway: bool):
    """CT body (40 HU) with an air-filled lung cavity, open to the air above through an
    airway in the top slices when ``open_airway``; plus a separate 'table' below."""
    arr = np.full((10, 48, 48), -1000, np.float32)
    arr[:, 6:36, 6:42] = 40
    arr[2:8, 12:28, 12:36] = -850  # lung
    if open_airway:
        arr[7:, 18:22, 22:26] = -900  # trachea up to the top slice
    arr[:, 40:43, 4:44] = 150  # table
    return MedicalImage(arr, spacing=(2.0, 2.0, 4.0), modality='CT')


def _former_benchmark_case_mask(image):
    """The former mmanat.evaluation.cases.body_mask, as a reference."""
    from scipy import ndimage
    from skimage.filters import threshold_otsu
    arr = image.array
    if image.modality == 'CT' or (image.modality is None and arr.min() <= -500):
        mask = arr > -500
    else:
        mask = arr > threshold_otsu(arr.astype(np.float32))
    lab, n = ndimage.label(mask)
    if n > 1:
        sizes = np.bincount(lab.reshape(-1))[1:]
        mask = lab == (1 + int(np.argmax(sizes)))
    return ndimage.binary_fill_holes(mask)


def test_fill_holes_per_slice_or_in_3d():
    closed, opened = _chest(False), _chest(True)
    kw = dict(radius=0, min_object_size=0, largest_component=True)
    for fill in (True, 'slice'):  # per slice: the lung is filled, airway or not
        assert body_mask(opened, fill_holes=fill, **kw)[2:8, 20, 16].all()
    assert body_mask(closed, fill_holes='3d', **kw)[2:8, 20, 16].all()
    assert not body_mask(opened, fill_holes='3d', **kw)[2:8, 20, 16].any()  # open cavity
    assert not body_mask(opened, fill_holes=False, **kw)[2:8, 20, 16].any()
    big = body_mask(opened, fill_holes='3d', **kw)
    assert not big[:, 40:43].any()  # the table is a smaller component
    with pytest.raises(InvalidInputError, match='fill_holes'):
        body_mask(opened, fill_holes='2d')


@pytest.mark.parametrize('modality', ['CT', 'MR'])
def test_benchmark_case_mask_keeps_the_former_case_rule(modality):
    image = _chest(True)
    if modality == 'MR':
        rng = np.random.default_rng(0)
        image = image.with_array(image.array + 1000 + rng.normal(0, 30, image.shape)
                                 .astype(np.float32), modality='MR')
    want = _former_benchmark_case_mask(image)
    np.testing.assert_array_equal(body_mask(image, **BENCHMARK_CASE_MASK), want)
    assert want.sum() > 1000
