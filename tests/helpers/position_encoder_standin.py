"""An analytic stand-in for SAM whose embeddings are exact functions of world position.

The test volumes hold a separable quadratic intensity field
``I = a_x (x - x0)^2 + a_y (y - y0)^2 + a_z (z - z0)^2 + b`` (any linear intensity
normalisation keeps it quadratic). Along each axis, first / second finite differences give
``I' / I'' = (index - index0)`` exactly, so the network recovers every voxel's position
relative to the field vertex in mm (the input is a 2 mm canonical LPS grid) and embeds it with
Fourier features: ``sim(p, p') = mean_k cos(w_k . (p - p'))``, which is 1 only at ``p = p'``.
A copy of a volume moved by ``t`` mm therefore matches every point at exactly ``+t``.

Levels: ``fine`` = features of the mean position of each (2, 2, 2) block, ``coarse`` of each
(4, 16, 16) block (the SAM strides; long wavelengths only, like SAM's smooth global map, so
that trilinear interpolation on its 8 x 32 x 32 mm grid is accurate), optional ``semantic``
(other frequencies, stride 2).
The model has only buffers, registered as ``PositionEncoderStandIn`` for config-driven tests.
"""
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mmanat.registry import MODELS
from mmanat.structures import MedicalImage

FIELD = dict(a=(0.15, 0.2, 0.3), vertex=(3.0, -5.0, 7.0), base=-600.0)  # a in x, y, z order


def quadratic_volume(shape=(32, 64, 64), spacing=2.0, origin=(-60.0, -70.0, -30.0),
                     vertex=None, a=None, base=None, field_origin=None):
    """A CT volume (z, y, x) holding the quadratic field; ``vertex`` in world mm (x, y, z)
    is where the field has its minimum. ``field_origin`` shifts the field with the grid (a
    moved copy: same array, origin moved)."""
    a = np.asarray(a or FIELD['a'], dtype=np.float64)
    vertex = np.asarray(FIELD['vertex'] if vertex is None else vertex, dtype=np.float64)
    base = FIELD['base'] if base is None else base
    img = MedicalImage(np.zeros(shape, np.float32), spacing=spacing, origin=origin,
                       modality='CT')
    zz, yy, xx = np.meshgrid(*[np.arange(n) for n in shape], indexing='ij')
    world = img.array_index_to_world(np.stack([zz, yy, xx], -1))
    arr = base + ((world - vertex) ** 2 * a).sum(-1)
    return img.with_array(arr.astype(np.float32))


def moved(image: MedicalImage, shift_mm) -> MedicalImage:
    """The same voxels with the origin moved by ``shift_mm`` (x, y, z): anatomy moves by it."""
    return image.with_array(image.array.copy(),
                            origin=image.origin + np.asarray(shift_mm, dtype=np.float64))


@MODELS.register_module(force=True)
class PositionEncoderStandIn(nn.Module):
    """SAM-shaped analytic network (see module docstring).

    Args:
        channels: embedding dimension (even).
        spacing: input voxel size in mm.
        seed: frequencies' seed.
        semantic: also output a semantic map.
        min_wavelength / max_wavelength: Fourier wavelengths in mm (log-uniform).
        coarse_min_wavelength: shortest wavelength of the coarse map (up to 4x the max).
    """

    def __init__(self, channels: int = 32, spacing: float = 2.0, seed: int = 0,
                 semantic: bool = False, min_wavelength: float = 40.0,
                 max_wavelength: float = 400.0, coarse_min_wavelength: float = 200.0):
        super().__init__()
        rng = np.random.default_rng(seed)
        K = channels // 2

        def freqs(lo, hi):
            d = rng.normal(size=(K, 3))
            d /= np.linalg.norm(d, axis=1, keepdims=True)
            lam = np.exp(rng.uniform(np.log(lo), np.log(hi), K))
            return torch.tensor(d * (2 * math.pi / lam)[:, None], dtype=torch.float32)

        self.register_buffer('freqs', freqs(min_wavelength, max_wavelength))  # rad/mm, z,y,x
        # the coarse map is "global": long wavelengths only, smooth on its 8 x 32 x 32 mm grid
        self.register_buffer('coarse_freqs', freqs(coarse_min_wavelength, 4 * max_wavelength))
        self.register_buffer('sem_freqs', freqs(min_wavelength, max_wavelength))
        self.spacing = float(spacing)
        self.semantic = bool(semantic)
        self.fine_stride = (2, 2, 2)
        self.coarse_stride = (4, 16, 16)

    def positions(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 1, D, H, W) -> (N, 3, D, H, W) mm from the field vertex, (z, y, x) order."""
        x = x.double()
        out = []
        for dim in (2, 3, 4):
            n = x.shape[dim]
            if n < 3:
                out.append(torch.zeros_like(x))
                continue
            first = [x.narrow(dim, i, 1) for i in range(3)]
            last = [x.narrow(dim, n - 1 - i, 1) for i in range(3)]
            # quadratic extrapolation: exact for the quadratic field
            lo = 3 * first[0] - 3 * first[1] + first[2]
            hi = 3 * last[0] - 3 * last[1] + last[2]
            p = torch.cat([lo, x, hi], dim)
            prev, nxt = p.narrow(dim, 0, n), p.narrow(dim, 2, n)
            d1 = (nxt - prev) / 2
            d2 = nxt - 2 * x + prev
            ok = d2.abs() > 1e-9
            out.append(torch.where(ok, d1 / torch.where(ok, d2, 1.0), 0.0) * self.spacing)
        return torch.cat(out, 1)

    def _encode(self, p: torch.Tensor, freqs: torch.Tensor) -> torch.Tensor:
        phase = torch.einsum('kd,nd...->nk...', freqs.double(), p)
        feat = torch.cat([torch.cos(phase), torch.sin(phase)], 1)
        return F.normalize(feat, dim=1).float()

    def extract_feat(self, inputs: torch.Tensor):
        p = self.positions(inputs)
        fine_p = F.avg_pool3d(p, self.fine_stride, ceil_mode=True)
        coarse_p = F.avg_pool3d(p, self.coarse_stride, ceil_mode=True)
        out = dict(fine=self._encode(fine_p, self.freqs),
                   coarse=self._encode(coarse_p, self.coarse_freqs))
        if self.semantic:
            out['semantic'] = self._encode(fine_p, self.sem_freqs)
        return out
