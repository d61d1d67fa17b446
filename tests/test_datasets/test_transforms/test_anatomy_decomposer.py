"""AnatomyDecomposer returns exactly the grid cell it reports, for every granularity."""
import numpy as np
import pytest

from mmanat.datasets.transforms.anatomy_decomposer import AnatomyDecomposer, grid_cell_box
from mmanat.utils.exceptions import InvalidInputError


@pytest.mark.parametrize('shape', [(37, 50), (64, 64)])
@pytest.mark.parametrize('n', [0, 1, 2, 3, 4, 5])
def test_returns_reported_cell_pixel_exact(shape, n):
    np.random.seed(n)
    img = np.arange(shape[0] * shape[1], dtype=np.float32).reshape(shape)  # unique values
    t = AnatomyDecomposer(granularity=n)
    seen = set()
    for _ in range(400):
        out = t(dict(img=img.copy()))
        row, col, g = out['ad_cell']
        assert g == n
        x0, y0, x1, y1 = out['ad_box']
        assert (x0, y0, x1, y1) == grid_cell_box(shape, n, row, col)
        np.testing.assert_array_equal(out['img'], img[y0:y1, x0:x1])
        # the box is the cell of the equal grid: edges at floor(k * size / n)
        if n >= 1:
            assert (y0, y1) == (row * shape[0] // n, (row + 1) * shape[0] // n)
            assert (x0, x1) == (col * shape[1] // n, (col + 1) * shape[1] // n)
        else:
            assert (row, col, x0, y0, x1, y1) == (0, 0, 0, 0, shape[1], shape[0])
        seen.add((row, col))
    # uniform choice: all n*n cells are drawn in 400 tries (n <= 5)
    assert len(seen) == max(1, n * n)


@pytest.mark.parametrize('n', [2, 3, 4])
def test_cells_tile_the_image(n):
    shape = (37, 50)
    cover = np.zeros(shape, int)
    for r in range(n):
        for c in range(n):
            x0, y0, x1, y1 = grid_cell_box(shape, n, r, c)
            cover[y0:y1, x0:x1] += 1
    assert (cover == 1).all()


def test_landmarks_follow_the_cell_and_runtime_change():
    np.random.seed(0)
    img = np.zeros((40, 40), np.float32)
    lm = np.array([[5.0, 5.0], [30.0, 25.0]], np.float32)  # (column, row)
    t = AnatomyDecomposer(granularity=0)
    out = t(dict(img=img, landmarks=lm))
    np.testing.assert_allclose(out['landmarks'], lm)
    t.set_granularity(2)
    for _ in range(20):
        out = t(dict(img=img, landmarks=lm.copy()))
        x0, y0 = out['ad_box'][:2]
        np.testing.assert_allclose(out['landmarks'], lm - [x0, y0])
        expect = [(x0 <= 5 < x0 + 20) and (y0 <= 5 < y0 + 20),
                  (x0 <= 30 < x0 + 20) and (y0 <= 25 < y0 + 20)]
        assert out['landmark_valid'].tolist() == expect
        assert out['img'].shape == (20, 20)


def test_bad_input():
    with pytest.raises(InvalidInputError):
        AnatomyDecomposer(granularity=-1)
    with pytest.raises(InvalidInputError, match='cells under'):
        AnatomyDecomposer(granularity=8)(dict(img=np.zeros((16, 16), np.float32)))
    with pytest.raises(InvalidInputError):
        AnatomyDecomposer(granularity=2)(dict(img=np.zeros((4, 16, 16), np.float32)))
