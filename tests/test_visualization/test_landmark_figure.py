"""plot_landmarks: a PNG with every named landmark, clear errors."""
import numpy as np
import pytest

from mmanat.structures import MedicalImage, PointSet
from mmanat.utils.exceptions import InvalidInputError
from mmanat.visualization.landmark_figure import plot_landmarks


def _image():
    arr = np.full((20, 40, 50), -1000, np.int16)
    arr[5:15, 10:30, 10:40] = 40
    return MedicalImage(arr, spacing=(2.0, 2.0, 5.0), origin=(-50.0, -40.0, 0.0),
                        modality='CT')


def test_writes_png(tmp_path):
    image = _image()
    pts = PointSet(image.array_index_to_world([[10, 20, 25], [6, 12, 12], [14, 28, 38]]),
                   names=['a', 'b', 'c'])
    out = plot_landmarks(image, pts, str(tmp_path / 'sub' / 'fig.png'), columns=3)
    with open(out, 'rb') as f:
        assert f.read(8) == b'\x89PNG\r\n\x1a\n'
    import matplotlib.image as mpimg
    h, w = mpimg.imread(out).shape[:2]
    assert h > 400 and w > 600  # two rows of three panels


def test_errors(tmp_path):
    image = _image()
    outside = PointSet([[500.0, 0.0, 0.0]], names=['far'])
    with pytest.raises(InvalidInputError, match='outside'):
        plot_landmarks(image, outside, str(tmp_path / 'x.png'))
    flat = MedicalImage(np.zeros((40, 50)))
    with pytest.raises(InvalidInputError, match='3D volume'):
        plot_landmarks(flat, PointSet([[0.0, 0.0]]), str(tmp_path / 'y.png'))
    assert not list(tmp_path.iterdir())
