"""Two augmented views of a radiograph anchor (Adam: Hosseinzadeh Taher et al., 2023; MoCo
v2)."""
from __future__ import annotations

import math
from typing import Sequence, Tuple

import numpy as np
from mmcv.transforms import BaseTransform

from mmanat.registry import TRANSFORMS
from mmanat.utils.exceptions import InvalidInputError


def sample_resized_crop(h: int, w: int, scale: Tuple[float, float],
                        ratio: Tuple[float, float], rng=np.random) -> Tuple[float, float, float,
                                                                               float]:
    """Draw a RandomResizedCrop box ``(cx, cy, cw, ch)`` (centre and size in pixels) covering
    ``U(scale)`` of the image area with a log-uniform aspect ratio in ``ratio``; after 10
    failed tries, the central crop with the ratio clamped (the usual algorithm)."""
    area = h * w
    log_r = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target = area * rng.uniform(scale[0], scale[1])
        ar = math.exp(rng.uniform(*log_r))
        cw = math.sqrt(target * ar)
        ch = math.sqrt(target / ar)
        if 0 < cw <= w and 0 < ch <= h:
            x0 = rng.uniform(0, w - cw)
            y0 = rng.uniform(0, h - ch)
            return x0 + cw / 2, y0 + ch / 2, cw, ch
    in_ratio = w / h
    if in_ratio < ratio[0]:
        cw, ch = w, w / ratio[0]
    elif in_ratio > ratio[1]:
        cw, ch = h * ratio[1], h
    else:
        cw, ch = w, h
    return w / 2, h / 2, cw, ch


def warp_crop(img: np.ndarray, box: Tuple[float, float, float, float], angle_deg: float,
              out_size: int) -> np.ndarray:
    """Resample the box ``(cx, cy, cw, ch)`` of ``img`` (pixel units, edges of the image at
    -0.5 and size-0.5), rotated by ``angle_deg`` about its centre, onto an
    ``out_size x out_size`` grid in one affine warp (bilinear, zero = air outside)."""
    import cv2
    cx, cy, cw, ch = box
    a = math.radians(angle_deg)
    ca, sa = math.cos(a), math.sin(a)
    sx, sy = cw / out_size, ch / out_size
    # dst (u, v) -> src: centre + R @ diag(sx, sy) @ ((u, v) - (S - 1) / 2) (box centre at
    # pixel coordinates cx - 0.5, cy - 0.5 since the box is in edge coordinates)
    lin = np.array([[ca * sx, -sa * sy], [sa * sx, ca * sy]])
    c_out = (out_size - 1) / 2.0
    t = np.array([cx - 0.5, cy - 0.5]) - lin @ np.array([c_out, c_out])
    m = np.hstack([lin, t[:, None]]).astype(np.float64)
    return cv2.warpAffine(img, m, (out_size, out_size),
                          flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)


def to_network_input(img: np.ndarray, mean: float, std: float, channels: int) -> np.ndarray:
    """``(H, W)`` image in [0, 1] -> normalised ``float32 (C, H, W)`` (grey replicated)."""
    x = (img.astype(np.float32) - np.float32(mean)) / np.float32(std)
    return np.repeat(x[None], channels, axis=0) if channels > 1 else x[None]


@TRANSFORMS.register_module()
class TwoViewXrayAugment(BaseTransform):
    """Make ``num_views`` independently augmented views of ``results['img']`` (Adam).

    Per view: RandomResizedCrop to ``out_size`` (area ``scale``, aspect ``ratio``) combined
    with a rotation ``U(-rotation, rotation)`` degrees into ONE bilinear affine warp;
    brightness and contrast jitter (factors ``U(1 - b, 1 + b)``, ``U(1 - c, 1 + c)``, random
    order, with probability ``jitter_prob``); Gaussian blur with ``sigma ~ U(blur_sigma)``
    output pixels with probability ``blur_prob``; clip to [0, 1]; normalise with
    ``(x - mean) / std``. No horizontal flip (anatomy is not left-right symmetric).
    The reference blur range (0.1, 2.0) is meant for 224-pixel views: scale it with
    ``out_size`` for small views.

    Input ``results['img']``: ``float32 (H, W)`` in [0, 1]. Output ``results['views']``:
    ``float32 (num_views, channels, out_size, out_size)``, and ``results['view_params']``:
    per view ``dict(box=(cx, cy, cw, ch), angle, brightness, contrast, sigma)`` (None when
    not applied).
    """

    def __init__(self, out_size: int = 224, scale: Sequence[float] = (0.2, 1.0),
                 ratio: Sequence[float] = (3 / 4, 4 / 3), rotation: float = 30.0,
                 brightness: float = 0.4, contrast: float = 0.4, jitter_prob: float = 0.8,
                 blur_sigma: Sequence[float] = (0.1, 2.0), blur_prob: float = 0.5,
                 mean: float = 0.5, std: float = 0.25, channels: int = 1, num_views: int = 2):
        if int(out_size) < 2 or int(channels) not in (1, 3) or int(num_views) < 1:
            raise InvalidInputError(f'TwoViewXrayAugment: out_size >= 2, channels 1 or 3 and '
                                    f'num_views >= 1 needed, got {out_size}, {channels}, '
                                    f'{num_views}.')
        if not 0 < scale[0] <= scale[1] <= 1 or not 0 < ratio[0] <= ratio[1]:
            raise InvalidInputError(f'TwoViewXrayAugment: bad scale {scale} or ratio {ratio}.')
        if std <= 0:
            raise InvalidInputError(f'TwoViewXrayAugment: std must be > 0, got {std}.')
        self.out_size = int(out_size)
        self.scale = (float(scale[0]), float(scale[1]))
        self.ratio = (float(ratio[0]), float(ratio[1]))
        self.rotation = float(rotation)
        self.brightness = float(brightness)
        self.contrast = float(contrast)
        self.jitter_prob = float(jitter_prob)
        self.blur_sigma = (float(blur_sigma[0]), float(blur_sigma[1]))
        self.blur_prob = float(blur_prob)
        self.mean = float(mean)
        self.std = float(std)
        self.channels = int(channels)
        self.num_views = int(num_views)

    def augment(self, img: np.ndarray) -> Tuple[np.ndarray, dict]:
        """One augmented view ``(S, S)`` in [0, 1] and its parameters."""
        import cv2
        rng = np.random
        h, w = img.shape
        box = sample_resized_crop(h, w, self.scale, self.ratio, rng)
        angle = rng.uniform(-self.rotation, self.rotation) if self.rotation > 0 else 0.0
        v = warp_crop(img, box, angle, self.out_size)
        b = c = sigma = None
        if rng.rand() < self.jitter_prob:
            b = rng.uniform(max(0.0, 1 - self.brightness), 1 + self.brightness)
            c = rng.uniform(max(0.0, 1 - self.contrast), 1 + self.contrast)
            if rng.rand() < 0.5:
                v = np.clip(v * np.float32(b), 0, 1)
                m = np.float32(v.mean())
                v = np.clip((v - m) * np.float32(c) + m, 0, 1)
            else:
                m = np.float32(v.mean())
                v = np.clip((v - m) * np.float32(c) + m, 0, 1)
                v = np.clip(v * np.float32(b), 0, 1)
        if rng.rand() < self.blur_prob:
            sigma = rng.uniform(*self.blur_sigma)
            v = cv2.GaussianBlur(v, (0, 0), sigmaX=sigma, sigmaY=sigma,
                                 borderType=cv2.BORDER_REFLECT_101)
        params = dict(box=tuple(float(x) for x in box), angle=float(angle), brightness=b,
                      contrast=c, sigma=sigma)
        return v, params

    def transform(self, results: dict) -> dict:
        img = results.get('img')
        if img is None or np.ndim(img) != 2:
            raise InvalidInputError('TwoViewXrayAugment needs results["img"] as a 2D (H, W) '
                                    f'array in [0, 1], got {None if img is None else np.shape(img)}.')
        img = np.ascontiguousarray(img, dtype=np.float32)
        views, params = [], []
        for _ in range(self.num_views):
            v, p = self.augment(img)
            views.append(to_network_input(v, self.mean, self.std, self.channels))
            params.append(p)
        results['views'] = np.stack(views).astype(np.float32, copy=False)
        results['view_params'] = params
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(out_size={self.out_size}, scale={self.scale}, '
                f'rotation={self.rotation}, channels={self.channels})')
