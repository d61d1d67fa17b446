"""LoadVolume and ResampleVolume."""
import numpy as np
import pytest
import SimpleITK as sitk

from mmanat.datasets.transforms.loading import LoadVolume
from mmanat.datasets.transforms.resample_volume import ResampleVolume
from mmanat.structures.image import MedicalImage
from mmanat.utils.exceptions import InvalidInputError


def _write(path, arr, spacing, origin):
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing(spacing)
    img.SetOrigin(origin)
    sitk.WriteImage(img, str(path))


def test_load_file_with_label_on_other_grid(tmp_path):
    arr = np.full((6, 8, 10), -1000, np.int16)
    arr[2:4, 3:5, 4:6] = 500
    _write(tmp_path / 'ct.nii.gz', arr, (2.0, 2.0, 3.0), (10.0, -5.0, 7.0))
    lab = np.zeros((12, 16, 20), np.uint8)  # finer grid, same field of view
    lab[4:8, 6:10, 8:12] = 2
    _write(tmp_path / 'lab.nrrd', lab, (1.0, 1.0, 1.5), (9.5, -5.5, 6.25))
    res = LoadVolume(with_label=True)(dict(img_path=str(tmp_path / 'ct.nii.gz'),
                                           label_path=str(tmp_path / 'lab.nrrd'),
                                           modality='ct'))
    image, label = res['image'], res['label']
    assert res['modality'] == 'CT' and res['subject_id'] == 'ct'
    assert res['img_shape'] == (6, 8, 10)
    np.testing.assert_allclose(image.origin, (10.0, -5.0, 7.0))
    assert label.same_geometry(image)  # nearest-resampled onto the image grid
    assert set(np.unique(label.array)) == {0, 2}
    np.testing.assert_array_equal(label.array == 2, arr == 500)


def test_passthrough_and_errors(tmp_path):
    img = MedicalImage(np.zeros((3, 4, 5)), modality='MR')
    res = LoadVolume()(dict(image=img))
    assert res['image'] is img and res['modality'] == 'MR'
    with pytest.raises(InvalidInputError, match='img_path'):
        LoadVolume()(dict())
    with pytest.raises(InvalidInputError):
        LoadVolume()(dict(img_path=str(tmp_path / 'absent.nii.gz')))


def test_resample_volume_keeps_world_positions():
    arr = np.zeros((10, 12, 14), np.float32)
    arr[4:6, 4:8, 5:9] = 100
    img = MedicalImage(arr, spacing=(1.0, 1.0, 2.5), origin=(3.0, 4.0, 5.0), modality='CT')
    lab = img.with_array((arr > 0).astype(np.int16), modality=None)
    res = ResampleVolume(spacing=2.0)(dict(image=img, label=lab))
    out = res['image']
    np.testing.assert_allclose(out.spacing, 2.0)
    assert res['label'].same_geometry(out)

    def centroid(image):  # intensity-weighted, world mm
        idx = np.argwhere(image.array > 0)
        w = image.array[tuple(idx.T)]
        return image.array_index_to_world((idx * w[:, None]).sum(0) / w.sum())

    assert np.linalg.norm(centroid(img) - centroid(out)) < 0.5
