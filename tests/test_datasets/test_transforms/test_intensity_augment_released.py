"""The released SAM intensity augmentation (alibaba-damo-academy/self-supervised-anatomical-
embedding-v2, configs/sam/sam_NIHLN.py / sam_deeplesion.py view pipelines): noise with std
~ U(0, 0.001), then (sam_deeplesion.py) torchio's per-axis Gaussian blur in mm - as options of
RandomIntensityAugment and as the default of the reference-scale CT folder config."""
import os.path as osp

import numpy as np
import pytest
from mmengine.config import Config
from scipy.ndimage import gaussian_filter

from mmanat.datasets.transforms.intensity_augment import RandomIntensityAugment
from mmanat.registry import TRANSFORMS
from mmanat.utils.exceptions import InvalidInputError

CFG_DIR = osp.join(osp.dirname(__file__), '..', '..', '..', 'configs', '_base_', 'datasets')
SPACING = (1.6, 2.0, 2.4)   # (x, y, z) mm: anisotropic, so a wrong axis order shows


def _views(seed=0, shape=(2, 10, 14, 12)):
    rng = np.random.RandomState(seed)
    views = (rng.standard_normal(shape) * 30).astype(np.float32)
    geoms = [dict(spacing=np.array(SPACING)), dict(spacing=np.array(SPACING) * 1.1)]
    return dict(view_imgs=views, view_geometries=geoms)


def test_per_axis_blur_equals_scipy_with_the_drawn_sigmas():
    res = _views()
    before = res['view_imgs'].copy()
    np.random.seed(3)
    aug = RandomIntensityAugment(blur_prob=1.0, blur_sigma_mm=(0.5, 4.0), blur_per_axis=True,
                                 blur_mode='reflect', noise_prob=0.0)
    out = aug(res)
    for v, rec in enumerate(out['two_view_meta']['augment']):
        sig = np.asarray(rec['blur_sigma_mm'])
        assert sig.shape == (3, ) and ((sig >= 0.5) & (sig <= 4.0)).all()
        assert np.ptp(sig) > 0.1                     # one sigma per axis, not one for all
        spacing = res['view_geometries'][v]['spacing']
        expect = gaussian_filter(before[v], sigma=(sig / spacing)[::-1], mode='reflect')
        np.testing.assert_allclose(out['view_imgs'][v], expect, rtol=0, atol=1e-4)
        # the axes matter: the x and z sigmas swapped give a different image
        swapped = gaussian_filter(before[v], sigma=(sig / spacing), mode='reflect')
        assert np.abs(out['view_imgs'][v] - swapped).max() > 1e-2


def test_blur_matches_torchio_blur():
    """The reference's RandomBlur3d is torchio.RandomBlur(std=(0, 4)); with the sigmas this
    transform drew, torchio's Blur gives the same view."""
    tio = pytest.importorskip('torchio')
    import torch
    res = _views(seed=1)
    before = res['view_imgs'].copy()
    np.random.seed(0)
    out = RandomIntensityAugment(blur_prob=1.0, blur_per_axis=True, blur_mode='reflect',
                                 noise_prob=0.0)(res)
    for v in range(2):
        sig = out['two_view_meta']['augment'][v]['blur_sigma_mm']
        spacing = res['view_geometries'][v]['spacing']
        image = tio.ScalarImage(tensor=torch.from_numpy(before[v].transpose(2, 1, 0).copy())[None],
                                affine=np.diag(list(spacing) + [1.0]))
        ref = tio.Blur(std=tuple(sig))(image).data[0].numpy().transpose(2, 1, 0)
        np.testing.assert_allclose(out['view_imgs'][v], ref, rtol=0, atol=1e-3)


def test_noise_first_order():
    """Noise then blur (released order) smooths the noise away; blur then noise keeps it."""
    zeros = dict(view_imgs=np.zeros((2, 12, 16, 16), np.float32))
    kw = dict(blur_prob=1.0, blur_sigma_mm=(4.0, 4.0), noise_prob=1.0, noise_std=(5.0, 5.0))
    np.random.seed(0)
    first = RandomIntensityAugment(noise_first=True, **kw)(dict(zeros))['view_imgs']
    np.random.seed(0)
    last = RandomIntensityAugment(**kw)(dict(zeros))['view_imgs']
    assert last.std() == pytest.approx(5.0, rel=0.1)
    assert first.std() < 0.5


def test_released_config_steps():
    cfg = Config.fromfile(osp.join(CFG_DIR, 'sam_two_view.py'))
    res = _views(seed=2)
    before = res['view_imgs'].copy()
    np.random.seed(0)
    out = TRANSFORMS.build(cfg.view_augment_released)(dict(res))
    diff = np.abs(out['view_imgs'] - before)
    assert 0 < diff.max() < 0.01                      # std <= 0.001: practically none
    assert all(a['blur_sigma_mm'] == 0.0 and 0 <= a['noise_std'] <= 0.001
               for a in out['two_view_meta']['augment'])
    np.random.seed(0)
    blur = TRANSFORMS.build(cfg.view_augment_released_blur)(dict(res))
    sig = [a['blur_sigma_mm'] for a in blur['two_view_meta']['augment']]
    assert all(len(s) == 3 and max(s) <= 4.0 for s in sig)
    assert np.abs(blur['view_imgs'] - before).max() > 1.0
    # the stronger mmanat augmentation is still the one of the shared pipeline
    aug = cfg.two_view_pipeline[2]
    assert aug == cfg.view_augment and tuple(aug['noise_std']) == (0.0, 4.0)


def test_ct_folder_uses_the_released_augmentation():
    ct = Config.fromfile(osp.join(CFG_DIR, 'sam_ct_folder.py')).train_dataloader
    syn = Config.fromfile(osp.join(CFG_DIR, 'sam_synthetic.py')).train_dataloader
    steps = ct.dataset.pipeline
    assert [t['type'] for t in steps] == [
        'LoadVolume', 'RandomTwoViewCrop', 'NormalizeViewIntensity', 'RandomIntensityAugment',
        'PackSAMInputs']
    assert tuple(steps[3]['noise_std']) == (0.0, 0.001) and steps[3]['blur_prob'] == 0.0
    # the synthetic (CPU) fragment keeps the stronger one
    assert tuple(syn.dataset.pipeline[2]['noise_std']) == (0.0, 4.0)


def test_invalid_blur_mode():
    with pytest.raises(InvalidInputError, match='blur_mode'):
        RandomIntensityAugment(blur_mode='edge')
