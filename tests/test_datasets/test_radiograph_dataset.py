"""RadiographDataset (list file / folder, labels, fractions) and SyntheticRadiographDataset."""
import numpy as np
import pytest

from mmanat.utils.exceptions import InvalidInputError


def _pngs(folder, n=4):
    import cv2
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        img = np.full((20, 30), 40 * i + 10, np.uint8)
        img[5:10, 5:10] = 255
        cv2.imwrite(str(folder / f'{i:08d}_000.png'), img)


def test_list_file_numeric_and_named_labels(tmp_path):
    from mmanat.datasets.radiograph_dataset import RadiographDataset
    _pngs(tmp_path / 'images')
    (tmp_path / 'num.txt').write_text('00000000_000.png 0 1 0\n# comment\n\n'
                                      '00000001_000.png 1 0 1\n')
    ds = RadiographDataset(ann_file=str(tmp_path / 'num.txt'), data_root=str(tmp_path),
                           data_prefix=dict(img_path='images'), classes=('a', 'b', 'c'))
    assert len(ds) == 2
    item = ds[1]
    np.testing.assert_array_equal(item['gt_label'], [1, 0, 1])
    assert item['img'].dtype == np.float32 and item['img'].shape == (20, 30)
    assert item['img'].max() == pytest.approx(1.0)
    (tmp_path / 'names.txt').write_text('00000002_000.png Cardiomegaly|Effusion\n'
                                        '00000003_000.png No Finding\n')
    ds = RadiographDataset(ann_file=str(tmp_path / 'names.txt'),
                           data_prefix=dict(img_path=str(tmp_path / 'images')), load_size=15)
    lab = ds[0]['gt_label']
    assert lab.shape == (14, ) and lab[1] == lab[2] == 1 and lab.sum() == 2
    assert ds[1]['gt_label'].sum() == 0 and ds[0]['img'].shape == (10, 15)
    (tmp_path / 'bad.txt').write_text('00000002_000.png Flying_Pig\n')
    with pytest.raises(InvalidInputError, match='Flying_Pig'):
        RadiographDataset(ann_file=str(tmp_path / 'bad.txt'))


def test_folder_cache_and_fraction(tmp_path):
    from mmanat.datasets.radiograph_dataset import RadiographDataset
    _pngs(tmp_path / 'imgs', n=10)
    ds = RadiographDataset(ann_file=str(tmp_path / 'imgs'), cache_images=True)
    assert len(ds) == 10 and 'gt_label' not in ds[0]
    ds[0]['img'][:] = -1  # items are copies: the cache stays intact
    assert ds[0]['img'].min() >= 0
    sub = RadiographDataset(ann_file=str(tmp_path / 'imgs'), label_fraction=0.3)
    assert len(sub) == 3
    with pytest.raises(InvalidInputError, match='not found'):
        RadiographDataset(ann_file=str(tmp_path / 'missing'))


def test_synthetic_radiographs_with_landmarks(tmp_path):
    from mmanat.datasets.synthetic_radiograph_dataset import SyntheticRadiographDataset
    ds = SyntheticRadiographDataset(num_samples=2, img_size=48, spacing=6.0,
                                    cache_dir=str(tmp_path / 'cache'))
    a = ds[0]
    assert a['img'].shape == (48, 48) and 0 <= a['img'].min() and a['img'].max() <= 1
    assert a['landmarks'].shape == (len(a['landmark_names']), 2)
    assert a['landmark_valid'].sum() >= 5 and a['gt_label'].shape == (3, )
    lm = a['landmarks'][a['landmark_valid']]
    assert (lm >= 0).all() and (lm <= 47).all()
    # the file cache gives identical items
    again = SyntheticRadiographDataset(num_samples=2, img_size=48, spacing=6.0,
                                       cache_dir=str(tmp_path / 'cache'))[0]
    np.testing.assert_array_equal(a['img'], again['img'])
    np.testing.assert_array_equal(a['landmarks'], again['landmarks'])
