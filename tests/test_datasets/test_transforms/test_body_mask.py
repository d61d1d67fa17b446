"""Body mask / table removal (the ``BodyMask`` transform on the rule of
:mod:`mmanat.structures.body`) and crop to the body."""
import numpy as np
import pytest

from mmanat.datasets.transforms.body_mask import BodyMask, body_bbox, body_mask
from mmanat.datasets.transforms.crop_to_body import CropToBody
from mmanat.registry import TRANSFORMS
from mmanat.structures import MedicalImage
from mmanat.utils.exceptions import InvalidInputError


def _phantom(nz=4, ny=96, nx=96, modality='CT'):
    """Air, an elliptic body (soft tissue) with lungs inside, a thin table below it, and a
    small bright speck in the air; geometry oblique-free but with an offset origin."""
    z, y, x = np.meshgrid(np.arange(nz), np.arange(ny), np.arange(nx), indexing='ij')
    arr = np.full((nz, ny, nx), -1000, np.int16)
    body = ((y - 44) / 30.0) ** 2 + ((x - 48) / 40.0) ** 2 <= 1
    arr[body] = 40
    lungs = (((y - 42) / 12.0) ** 2 + ((np.abs(x - 48) - 18) / 10.0) ** 2) <= 1
    arr[lungs] = -850
    arr[:, 82:84, 10:86] = 100  # table: 2 px thick, opened away by the radius-3 disk
    arr[:, 5:8, 5:8] = 300  # 9 px speck: removed by size
    image = MedicalImage(arr, spacing=(0.8, 0.8, 5.0), origin=(-38.0, -20.0, 100.0),
                         modality=modality)
    return image, body


def test_transform_module_re_exports_the_one_rule():
    import sys
    from mmanat.structures import body as rule
    transform_module = sys.modules['mmanat.datasets.transforms.body_mask']
    assert transform_module.body_mask is rule.body_mask
    assert transform_module.body_bbox is rule.body_bbox
    assert transform_module.air_value is rule.air_value


def test_body_mask_removes_table_and_speck_and_fills_lungs():
    image, body = _phantom()
    mask = body_mask(image)
    assert mask.dtype == bool and mask.shape == image.shape
    assert not mask[:, 82:84, :].any()  # table gone
    assert not mask[:, 5:8, 5:8].any()  # speck gone
    assert mask[:, 42, 30].all() and mask[:, 42, 66].all()  # lungs filled
    agreement = (mask == body).mean()
    assert agreement > 0.995


def test_body_mask_first_and_last_slices_filled():
    """Holes are filled in every slice, including the first and the last."""
    image, _ = _phantom(nz=3)
    mask = body_mask(image)
    for k in range(3):
        assert mask[k, 42, 30] and mask[k, 42, 66]


def test_body_mask_small_objects_removed_per_slice():
    image, _ = _phantom(nz=2)
    arr = image.array.copy()
    arr[1, 88:96, 0:40] = 50  # 320-px blob touching the border in slice 1 only
    mask = body_mask(image.with_array(arr))
    assert not mask[1, 89:96, 0:40].any()
    kept = body_mask(image.with_array(arr), min_object_size=100)
    assert kept[1, 92, 20]


def test_body_mask_body_cut_by_field_of_view_not_eroded():
    arr = np.full((2, 64, 64), -1000, np.int16)
    arr[:, :, 10:54] = 30  # body runs through the top and bottom image borders
    mask = body_mask(MedicalImage(arr, modality='CT'))
    assert mask[:, 0, 30].all() and mask[:, 63, 30].all()
    assert mask[:, :, 10:54].all() and not mask[:, :, :10].any()


def test_body_mask_mr_uses_otsu():
    image, body = _phantom(modality='MR')
    mr = image.with_array((image.array.astype(np.float32) + 1000) / 3)  # 0 .. 433
    mr.array[body] += 50
    mask = body_mask(mr)
    assert (mask == body).mean() > 0.99
    assert body_mask(mr, threshold=1e9).sum() == 0


def test_body_mask_2d():
    image, body = _phantom(nz=1)
    flat = MedicalImage(image.array[0], modality='CT')
    mask = body_mask(flat)
    assert mask.shape == flat.shape and (mask == body[0]).mean() > 0.995


def test_body_bbox_ct_threshold():
    image, body = _phantom()
    image.array[:, 82:84, :] = -1000  # no table
    image.array[:, 5:8, 5:8] = -1000
    bbox = body_bbox(image)
    ys, xs = np.nonzero(body[0])
    assert bbox == (slice(0, 4), slice(ys.min(), ys.max() + 1), slice(xs.min(), xs.max() + 1))
    grown = body_bbox(image, margin=5)
    assert grown[1] == slice(ys.min() - 5, ys.max() + 6) and grown[0] == slice(0, 4)
    with pytest.raises(InvalidInputError, match='no voxel above -500'):
        body_bbox(image.with_array(np.full(image.shape, -1000, np.int16)))


def test_body_mask_transform_adds_mask_and_removes_table():
    image, _ = _phantom()
    t = TRANSFORMS.build(dict(type='BodyMask', remove_table=True))
    assert isinstance(t, BodyMask)
    results = t(dict(image=image))
    mask = results['body_mask']
    assert isinstance(mask, MedicalImage) and mask.array.dtype == np.uint8
    assert mask.same_geometry(image)
    out = results['image'].array
    assert np.all(out[:, 82:84, :] == -1024) and out.dtype == np.int16
    assert np.all(out[mask.array == 1] == image.array[mask.array == 1])
    keep = BodyMask()(dict(image=image))
    np.testing.assert_array_equal(keep['image'].array, image.array)
    with pytest.raises(InvalidInputError, match='MedicalImage'):
        BodyMask()(dict(image=image.array))


def test_crop_to_body_keeps_world_coordinates():
    image, _ = _phantom()
    label = image.with_array((image.array > 0).astype(np.uint8), modality=None)
    results = BodyMask(remove_table=True)(dict(image=image, label=label))
    full = results['image']
    results = TRANSFORMS.build(dict(type='CropToBody'))(results)
    crop, bbox = results['image'], results['body_bbox']
    assert crop.shape[1] < image.shape[1] and crop.shape[2] < image.shape[2]
    # every kept voxel: same value, same world position
    zyx = np.indices(crop.shape).reshape(3, -1).T
    world = crop.array_index_to_world(zyx)
    src = full.world_to_array_index(world)
    np.testing.assert_allclose(src, zyx + [s.start for s in bbox], atol=1e-9)
    np.testing.assert_array_equal(full.array[bbox], crop.array)
    for key in ('label', 'body_mask'):
        assert results[key].same_geometry(crop)
    assert results['body_mask'].array.any()


def test_crop_to_body_use_mask_and_errors():
    image, body = _phantom()
    results = BodyMask()(dict(image=image))
    out = CropToBody(use_body_mask=True, margin=2)(results)
    ys, xs = np.nonzero(body[0])
    assert out['image'].shape[1] == ys.max() - ys.min() + 1 + 4
    with pytest.raises(InvalidInputError, match='BodyMask'):
        CropToBody(use_body_mask=True)(dict(image=image))
    other = image.with_array(image.array, origin=(0.0, 0.0, 0.0))
    with pytest.raises(InvalidInputError, match='not on the grid'):
        CropToBody()(dict(image=image, label=other))


def test_real_ct_body_mask(sample_file):
    from mmanat.fileio import read_volume
    from mmanat.structures import resample_to_spacing
    ct = resample_to_spacing(read_volume(sample_file('lung1')), 2.0)
    results = CropToBody()(BodyMask(remove_table=True)(dict(image=ct)))
    mask = results['body_mask'].array.astype(bool)
    # a chest: the body is a large fraction of each slice, lungs are filled in
    frac = mask.mean(axis=(1, 2))
    assert frac[mask.any(axis=(1, 2))].mean() > 0.3
    assert results['image'].shape[1] < ct.shape[1]
