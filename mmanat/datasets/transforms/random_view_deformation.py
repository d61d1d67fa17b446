"""Strong random deformation of each training view, with exact correspondences kept."""
from __future__ import annotations

from typing import Dict, Optional, Sequence, Tuple

import numpy as np
from mmcv.transforms import BaseTransform

from mmanat.registry import TRANSFORMS
from mmanat.utils.exceptions import InvalidInputError


@TRANSFORMS.register_module()
class RandomViewDeformation(BaseTransform):
    """Deform each view of a two-view sample independently: random anisotropic scaling,
    rotation and a smooth elastic displacement (the model of TorchIO's ``RandomAffine`` and
    ``RandomElasticDeformation``), applied to the image, its world-coordinate maps and its
    valid mask together.

    Why: SAM's two views of one volume differ only by a crop, a scale and intensity noise
    (Yan et al., TMI 2022, Sec. III-B), while the same anatomy in two patients differs in
    shape. Warping each view by its own random deformation shows the network pairs of one scan
    whose shapes differ - "cross-volume" pairs in the sense of UAE (Bai et al., 2023,
    Sec. III-B) - with the correspondence still exact: every voxel keeps the world position
    (in the original volume) of the point it now shows, because the coordinate maps are
    resampled with the image (linear interpolation of an affine coordinate field is exact).
    Voxels that come from outside the view (or near its border) become invalid.

    Put it right after :class:`RandomTwoViewCrop` (before the intensity steps)::

        dict(type='RandomViewDeformation', prob=0.8, scales=(0.8, 1.25), degrees=10,
             max_displacement=12.0, num_control_points=7)

    Required keys: ``view_imgs`` (2, D, H, W), ``view_coords`` (2, 3, D, H, W),
    ``view_valid`` (2, D, H, W); optional ``view_geometries`` (``spacing`` (x, y, z) mm) and
    ``view_pad_value``. Modified: the three arrays; ``two_view_meta['deformed']`` records
    which views were deformed.

    Args:
        prob: probability of deforming each view (independently).
        scales: range of the scale factor drawn per axis (anisotropic); ``None``: no scaling.
        degrees: rotations drawn in [-degrees, degrees] per axis.
        max_displacement: largest elastic displacement in mm (per axis); 0: no elastic part.
        num_control_points: control points of the elastic displacement grid per axis (>= 5;
            the outer ones are locked at zero).
        valid_tolerance: a voxel stays valid when the interpolated valid mask is at least
            ``1 - valid_tolerance`` (so no coordinate is blended with padding).
    """

    def __init__(self, prob: float = 0.8, scales: Optional[Tuple[float, float]] = (0.8, 1.25),
                 degrees: float = 10.0, max_displacement: float = 12.0,
                 num_control_points: int = 7, valid_tolerance: float = 1e-3):
        if not 0.0 <= float(prob) <= 1.0:
            raise InvalidInputError(f'RandomViewDeformation: prob={prob} must lie in [0, 1].')
        if scales is not None and not (0 < scales[0] <= scales[1]):
            raise InvalidInputError(
                f'RandomViewDeformation: scales={scales} must be (low, high) with 0 < low <= '
                'high.')
        if max_displacement < 0 or degrees < 0:
            raise InvalidInputError('RandomViewDeformation: degrees and max_displacement must '
                                    'be >= 0.')
        if int(num_control_points) < 5:
            raise InvalidInputError('RandomViewDeformation: num_control_points must be >= 5 '
                                    '(torchio needs 4 + the B-spline order).')
        self.prob = float(prob)
        self.scales = None if scales is None else tuple(float(s) for s in scales)
        self.degrees = float(degrees)
        self.max_displacement = float(max_displacement)
        self.num_control_points = int(num_control_points)
        self.valid_tolerance = float(valid_tolerance)

    # torchio's RandomAffine + RandomElasticDeformation resample every channel through a
    # SimpleITK B-spline transform: 5.4 s per sample of two 32 x 96 x 96 views, twice a whole
    # training step of SAM-tiny on 2 cores. The same model (random per-axis scaling and
    # rotation, a smooth displacement from random control-point offsets) is evaluated here
    # once per view as one dense sampling grid and applied to all channels in one
    # ``grid_sample`` call (tens of milliseconds).
    def _sampling_grid(self, shape_zyx: Sequence[int], spacing_xyz: np.ndarray):
        """Normalised (x, y, z) source positions of every output voxel, (1, D, H, W, 3)."""
        import torch
        import torch.nn.functional as F
        from scipy.spatial.transform import Rotation
        n_xyz = np.asarray(shape_zyx[::-1], dtype=np.float64)
        half = (n_xyz - 1) / 2.0
        axes = [(np.arange(n) - h) * sp for n, h, sp in zip(n_xyz.astype(int), half,
                                                             spacing_xyz)]
        zz, yy, xx = np.meshgrid(axes[2], axes[1], axes[0], indexing='ij')
        p = np.stack([xx, yy, zz], -1)  # (D, H, W, 3) mm from the view centre, x y z
        rot = Rotation.from_euler('xyz', np.random.uniform(-self.degrees, self.degrees, 3),
                                  degrees=True).as_matrix()
        scale = (np.random.uniform(*self.scales, 3) if self.scales is not None
                 else np.ones(3))
        src = p @ (rot / scale[None, :]).T  # an output point shows the source point A p
        if self.max_displacement > 0:
            k = self.num_control_points
            ctrl = np.random.uniform(-self.max_displacement, self.max_displacement,
                                     (3, k, k, k))
            ctrl[:, [0, -1]] = 0.0  # locked borders, as torchio's locked_borders
            ctrl[:, :, [0, -1]] = 0.0
            ctrl[:, :, :, [0, -1]] = 0.0
            field = F.interpolate(torch.from_numpy(ctrl)[None], size=tuple(shape_zyx),
                                  mode='trilinear', align_corners=True)[0].numpy()
            # a light Gaussian smoothing removes the kinks of the trilinear interpolation
            from scipy.ndimage import gaussian_filter
            sigma = [max(n / (k - 1) / 4.0, 0.5) for n in shape_zyx]
            field = np.stack([gaussian_filter(f, sigma, mode='nearest') for f in field], -1)
            src = src + field
        idx = src / spacing_xyz + half  # continuous (x, y, z) source index
        grid = 2.0 * idx / np.maximum(n_xyz - 1, 1) - 1.0
        return torch.from_numpy(grid[None])

    def _deform(self, img: np.ndarray, coords: np.ndarray, valid: np.ndarray,
                spacing: np.ndarray, pad_value: float):
        import torch
        import torch.nn.functional as F
        grid = self._sampling_grid(img.shape, spacing)
        # one float64 stack: image (offset so that zero padding means pad_value), the three
        # coordinate maps (an affine field, so trilinear interpolation keeps it exact), valid
        stack = np.concatenate([(img - pad_value)[None], coords, valid[None]], 0)
        out = F.grid_sample(torch.from_numpy(stack.astype(np.float64))[None], grid,
                            mode='bilinear', padding_mode='zeros', align_corners=True)[0]
        out = out.numpy()
        new_valid = out[4] >= 1.0 - self.valid_tolerance
        new_img = (out[0] + pad_value).astype(np.float32)
        new_img[~new_valid] = pad_value
        return new_img, out[1:4].astype(coords.dtype), new_valid

    def transform(self, results: Dict) -> Dict:
        for key in ('view_imgs', 'view_coords', 'view_valid'):
            if key not in results:
                raise InvalidInputError(f'RandomViewDeformation needs results["{key}"]; put it '
                                        'right after RandomTwoViewCrop.')
        imgs = np.array(results['view_imgs'], dtype=np.float32, copy=True)
        coords = np.array(results['view_coords'], copy=True)
        valid = np.array(results['view_valid'], dtype=bool, copy=True)
        geoms: Sequence = results.get('view_geometries') or [None] * len(imgs)
        pad = float(results.get('view_pad_value', float(imgs.min())))
        deformed = []
        for v in range(len(imgs)):
            if np.random.random_sample() >= self.prob:
                deformed.append(False)
                continue
            g = geoms[v]
            spacing = (np.asarray(g['spacing'], dtype=np.float64) if g is not None
                       else np.full(3, 2.0))
            imgs[v], coords[v], valid[v] = self._deform(imgs[v], coords[v], valid[v], spacing,
                                                        pad)
            deformed.append(True)
        results['view_imgs'], results['view_coords'], results['view_valid'] = \
            imgs, coords, valid
        results.setdefault('two_view_meta', {})['deformed'] = deformed
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(prob={self.prob}, scales={self.scales}, '
                f'degrees={self.degrees}, max_displacement={self.max_displacement})')
