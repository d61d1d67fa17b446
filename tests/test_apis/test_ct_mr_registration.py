"""UAE-M registration (Bai et al., 2023) of a synthetic MR to the CT of the same subject
after a known rigid + smooth deformation: the whole path of ``register_with_embeddings``
(body grid on the moved MR, matching, RANSAC Kabsch rigid, robust affine, SimpleITK B-spline
on the real CT/MR intensities) with oracle embeddings - analytic maps that embed each voxel's
anatomical position, known from the deformation - so the test measures the registration
machinery, not a trained model (trained models: the UAE-M card of docs/en/model_zoo.md).

Measured when written (seed 0, 4 mm, 47 landmarks + body points): identity 17.93 mm mean,
landmark affine 2.84 mm (6.3x lower), affine + B-spline 3.39 mm (5.3x lower; the quick
B-spline preset does not recover the <= 8 mm smooth part better than the affine fit).
"""
import numpy as np
import pytest

from tests.helpers.analytic_maps import analytic_maps, fourier_freqs
from mmanat.apis import register_with_embeddings
from mmanat.evaluation.cases import ct_mr_registration_cases
from mmanat.structures.embedding_map import GridGeometry


@pytest.fixture(scope='module')
def case_and_maps():
    case = ct_mr_registration_cases(1, spacing=4.0, seed=0, n_body_points=30)[0]
    to_ct = case.meta['deformation'].target_to_template  # moved-MR world -> CT world
    freqs = fourier_freqs(seed=3)
    ct_maps = analytic_maps(GridGeometry.from_image(case.template), lambda w: w, freqs)
    mr_maps = analytic_maps(GridGeometry.from_image(case.target), to_ct, freqs)
    return case, mr_maps, ct_maps


@pytest.mark.parametrize('deformable', ['none', 'bspline'])
def test_registration_of_moved_mr_to_ct_reduces_landmark_error(case_and_maps, deformable):
    case, mr_maps, ct_maps = case_and_maps
    assert case.template.modality == 'CT' and case.target.modality == 'MR'
    pts, truth = case.template_points, case.target_points  # CT points, their MR positions
    res = register_with_embeddings(None, case.target, case.template, moving_maps=mr_maps,
                                   fixed_maps=ct_maps, deformable=deformable, warp=False,
                                   bspline_overrides=dict(threads=1))
    before = np.linalg.norm(pts - truth, axis=1).mean()
    after = np.linalg.norm(res.map_fixed_to_moving(pts) - truth, axis=1)
    assert before > 10.0  # the known motion is substantial
    assert res.kept.sum() >= 0.8 * len(res.kept)  # oracle matches are all confident
    assert before / after.mean() > 4.0, (before, after.mean())
    assert after.mean() < 4.0 and after.max() < 10.0, (after.mean(), after.max())
