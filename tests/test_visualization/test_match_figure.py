"""Three-plane match figures: layout, physical aspect, windows, atomic PNG."""
import os

import numpy as np
import pytest

from mmanat.structures import MedicalImage
from mmanat.utils.exceptions import InvalidInputError
from mmanat.visualization import (CT_WINDOWS, choose_ct_window, display_range,
                                  orthogonal_planes, plot_match)


def _ct(shape=(20, 40, 50), spacing=(0.8, 0.8, 4.0), origin=(-20.0, -16.0, -40.0)):
    """Soft tissue (40 HU) with a lung-like air block (-850 HU) and a bright bone rod."""
    arr = np.full(shape, 40.0, np.float32)
    arr[:, 2:24, 2:30] = -850.0
    arr[:, 28:40, 36:50] = 1200.0
    return MedicalImage(arr, spacing=spacing, origin=origin, modality='CT', path='ct.nrrd')


def test_planes_have_physical_aspect_and_radiological_layout():
    img = _ct()
    p = img.array_index_to_world([10, 12, 15])  # inside the air block
    planes = orthogonal_planes(img, p)
    ax_pix, ax_ext, (u, v) = planes['axial']
    # extent in mm: x spans 50 * 0.8 = 40 mm, y 40 * 0.8 = 32 mm; pixels are square
    assert abs((ax_ext[1] - ax_ext[0]) - 40.0) < 1e-6 and abs((ax_ext[2] - ax_ext[3]) - 32) < 1e-6
    assert ax_pix.shape == (40, 50)
    cor_pix, cor_ext, _ = planes['coronal']
    assert abs((cor_ext[3] - cor_ext[2]) - 80.0) < 1e-6  # z: 20 slices x 4 mm
    assert cor_pix.shape[0] / cor_pix.shape[1] == pytest.approx(80 / 40, rel=0.05)
    # axial: row 0 is anterior (small y), column 0 patient right (small x)
    assert ax_ext[3] < ax_ext[2] and ax_ext[0] < ax_ext[1]
    # coronal: row 0 is superior (large z)
    assert cor_ext[3] > cor_ext[2]
    assert (u, v) == pytest.approx((p[0], p[1]))
    # the air block is where it should be: top-left part of the axial plane
    assert ax_pix[10, 10] == pytest.approx(-850.0) and ax_pix[35, 10] == pytest.approx(40.0)


def test_oblique_image_is_sampled_in_world_space(oblique_volume):
    p = oblique_volume.array_index_to_world([8, 7, 6])
    planes = orthogonal_planes(oblique_volume, p)
    pix, ext, (u, v) = planes['axial']
    col = int((u - ext[0]) / (ext[1] - ext[0]) * pix.shape[1])
    row = int((v - ext[3]) / (ext[2] - ext[3]) * pix.shape[0])
    assert pix[row, col] > 1000  # the bright block around the point
    assert np.isnan(pix).any()  # corners of the world box lie outside the rotated volume


def test_ct_window_presets_and_mr_minmax():
    img = _ct()
    assert choose_ct_window(img, img.array_index_to_world([10, 12, 15])) == 'lung'
    assert choose_ct_window(img, img.array_index_to_world([10, 32, 42])) == 'bone'
    assert choose_ct_window(img, img.array_index_to_world([10, 35, 10])) == 'soft_tissue'
    lo, hi, label = display_range(img, img.array_index_to_world([10, 12, 15]))
    level, width = CT_WINDOWS['lung']
    assert (lo, hi, label) == (level - width / 2, level + width / 2, 'lung')
    assert display_range(img, None, (40, 400))[:2] == (-160.0, 240.0)
    mr = MedicalImage(np.linspace(3, 900, 1000, dtype=np.float32).reshape(10, 10, 10),
                      modality='MR')
    assert display_range(mr, [0, 0, 0])[:3] == (pytest.approx(3.0), pytest.approx(900.0),
                                                'min-max')
    with pytest.raises(InvalidInputError, match='unknown window'):
        display_range(img, None, 'sunset')


def test_plot_match_writes_png_atomically(tmp_path):
    from matplotlib.image import imread
    a = _ct()
    b = _ct(origin=(-10.0, -6.0, -30.0))
    q = a.array_index_to_world([10, 12, 15])
    m = q + np.array([10.0, 10.0, 10.0])
    out = plot_match(a, q, b, m, 0.876, tmp_path / 'fig' / 'match.png')
    assert os.listdir(tmp_path / 'fig') == ['match.png']
    img = imread(out)
    assert img.shape[0] == 900 and img.shape[1] == 1350  # 2 rows x 3 planes, 13.5 x 9 in
    # the query marker (green) and the match marker (red) are drawn
    rgb = img[..., :3]
    green = (rgb[..., 1] > 0.8) & (rgb[..., 0] < 0.5) & (rgb[..., 2] < 0.5)
    red = (rgb[..., 0] > 0.8) & (rgb[..., 1] < 0.5) & (rgb[..., 2] < 0.5)
    assert green[:450].sum() > 50 and red[450:].sum() > 50


def test_plot_match_refuses_2d(tmp_path):
    xr = MedicalImage(np.zeros((10, 10), np.float32), modality='XR')
    with pytest.raises(InvalidInputError, match='3D'):
        plot_match(xr, [0, 0], xr, [0, 0], 1.0, tmp_path / 'x.png')
    assert not (tmp_path / 'x.png').exists()
