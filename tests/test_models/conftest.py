"""Synthetic two-view data for the model tests: coordinate maps of oriented grids (known
affine transforms) and an analytic volume sampled at those coordinates."""
import numpy as np
import pytest
import torch


def random_rotation(rng, max_deg):
    """Rotation about a random axis by an angle uniform in [-max_deg, max_deg] degrees."""
    axis = rng.normal(size=3)
    axis /= np.linalg.norm(axis)
    a = np.deg2rad(rng.uniform(-max_deg, max_deg))
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(a) * k + (1 - np.cos(a)) * (k @ k)


def grid_coords(shape, spacing, centre, rotation):
    """World mm (x, y, z) of every voxel of a (D, H, W) grid: ``centre + R @ (spacing *
    (index_xyz - (size - 1) / 2))``. Returns (3, D, H, W) float64."""
    D, H, W = shape
    z, y, x = np.meshgrid(np.arange(D), np.arange(H), np.arange(W), indexing='ij')
    idx = np.stack([x - (W - 1) / 2, y - (H - 1) / 2, z - (D - 1) / 2]).reshape(3, -1)
    pts = np.asarray(centre, float)[:, None] + rotation @ (np.asarray(spacing, float)[:, None]
                                                           * idx)
    return pts.reshape(3, D, H, W)


def view_pair_coords(rng, shape, base_spacing, shift=(0., 0., 0.), max_deg=25.,
                     scale_range=(0.8, 1.2)):
    """Two views of one volume: view 0 a random rotation/scale about the origin, view 1 a
    random rotation + rescale + ``shift`` (mm) of it. Returns (2, 3, D, H, W) float64."""
    out = []
    for v in range(2):
        s = rng.uniform(*scale_range)
        R = random_rotation(rng, max_deg)
        centre = rng.uniform(-5, 5, size=3) + (np.asarray(shift) if v else 0.)
        out.append(grid_coords(shape, np.asarray(base_spacing) * s, centre, R))
    return np.stack(out)


def phantom(coords):
    """An analytic 'anatomy' on world mm coordinates (3, ...): smooth blobs + ripples."""
    x, y, z = coords[0], coords[1], coords[2]
    rng = np.random.default_rng(1234)
    val = np.zeros_like(x)
    for _ in range(12):
        c = rng.uniform(-60, 60, size=3)
        r = rng.uniform(8, 25)
        a = rng.uniform(-1.5, 1.5)
        val += a * np.exp(-((x - c[0])**2 + (y - c[1])**2 + (z - c[2])**2) / (2 * r * r))
    val += 0.3 * np.sin(x / 9.) * np.cos(y / 13.) + 0.2 * np.sin(z / 7. + x / 23.)
    return val


@pytest.fixture
def sam_geometry():
    """The helpers of this module: ``sam_geometry.view_pair_coords(...)`` etc."""
    import types
    return types.SimpleNamespace(random_rotation=random_rotation, grid_coords=grid_coords,
                                 view_pair_coords=view_pair_coords, phantom=phantom)


@pytest.fixture
def sam_batch():
    """``sam_batch(B, shape, seed)`` -> (inputs (B, 2, 1, D, H, W), data_samples dict(coords
    (B, 2, 3, D, H, W), valid (B, 2, D, H, W))) of 2 mm views of the analytic phantom;
    voxels outside a 90 mm cube count as outside the original image."""

    def make(B=2, shape=(16, 64, 64), seed=0, shift=(0., 0., 0.)):
        rng = np.random.default_rng(seed)
        coords = np.stack([view_pair_coords(rng, shape, (2., 2., 2.), shift=shift)
                           for _ in range(B)])
        imgs = phantom(np.moveaxis(coords, 2, 0))[:, :, None]
        valid = (np.abs(coords) <= 90).all(axis=2)
        imgs = np.where(valid[:, :, None], imgs, 0.)
        return (torch.from_numpy(imgs).float(),
                dict(coords=torch.from_numpy(coords).float(), valid=torch.from_numpy(valid)))

    return make
