"""The views Adam v2 trains on (Hosseinzadeh Taher et al., CVPR 2024, Sec. 3): the anchor and
its 4 quadrants (unaugmented geometry, for the teacher and the part-whole losses), one
augmented global view and several local crops of the anchor (multi-crop, Caron et al. 2021)."""
from __future__ import annotations

from typing import Sequence

import numpy as np
from mmcv.transforms import BaseTransform

from mmanat.registry import TRANSFORMS
from mmanat.utils.exceptions import InvalidInputError

from .two_view_xray_augment import TwoViewXrayAugment, to_network_input


def resize_square(img: np.ndarray, size: int) -> np.ndarray:
    """``img`` resized to ``size x size`` (area averaging when shrinking, else bilinear)."""
    import cv2
    h, w = img.shape
    if (h, w) == (size, size):
        return img.astype(np.float32, copy=True)
    interp = cv2.INTER_AREA if min(h, w) > size else cv2.INTER_LINEAR
    return cv2.resize(img.astype(np.float32), (size, size), interpolation=interp)


@TRANSFORMS.register_module()
class AdamV2Views(BaseTransform):
    """From the anchor ``results['img']`` and its quadrants ``results['ad_parts']`` (see
    :class:`AnatomyDecomposerV2`) make

    * ``results['views']``: ``float32 (6, channels, global_size, global_size)`` = the anchor
      resized, one augmented global view of the anchor, the 4 quadrants resized (row-major);
    * ``results['local_views']``: ``float32 (num_local, channels, local_size, local_size)``
      augmented local crops of the anchor.

    Augmented views: RandomResizedCrop (area ``global_scale`` / ``local_scale``) with
    rotation, brightness / contrast jitter and blur, as :class:`TwoViewXrayAugment`. The anchor
    and quadrant views keep their geometry (the quadrants tile the anchor), with the photometric
    jitter only when ``jitter_parts``. All are normalised with ``(x - mean) / std``.

    Args:
        global_size, local_size: view sides in pixels (224 / 96 reference).
        num_local: local crops (8).
        global_scale, local_scale: crop area ranges (DINO: (0.4, 1) and (0.05, 0.4)).
        rotation, brightness, contrast, jitter_prob, blur_sigma, blur_prob, mean, std,
            channels: as in :class:`TwoViewXrayAugment` (``blur_sigma`` in global-view pixels,
            scaled for the local crops).
        jitter_parts: also jitter the anchor / quadrant views photometrically.
    """

    def __init__(self, global_size: int = 224, local_size: int = 96, num_local: int = 8,
                 global_scale: Sequence[float] = (0.4, 1.0),
                 local_scale: Sequence[float] = (0.05, 0.4), rotation: float = 10.0,
                 brightness: float = 0.4, contrast: float = 0.4, jitter_prob: float = 0.8,
                 blur_sigma: Sequence[float] = (0.1, 2.0), blur_prob: float = 0.5,
                 mean: float = 0.5, std: float = 0.25, channels: int = 1,
                 jitter_parts: bool = False):
        if int(num_local) < 0 or int(local_size) < 2 or int(global_size) < 2:
            raise InvalidInputError(f'AdamV2Views: sizes >= 2 and num_local >= 0 needed, got '
                                    f'{global_size}, {local_size}, {num_local}.')
        common = dict(ratio=(3 / 4, 4 / 3), rotation=rotation, brightness=brightness,
                      contrast=contrast, jitter_prob=jitter_prob, blur_prob=blur_prob,
                      mean=mean, std=std, channels=channels, num_views=1)
        self.global_aug = TwoViewXrayAugment(out_size=global_size, scale=global_scale,
                                             blur_sigma=blur_sigma, **common)
        r = float(local_size) / float(global_size)
        self.local_aug = TwoViewXrayAugment(out_size=local_size, scale=local_scale,
                                            blur_sigma=(blur_sigma[0] * r, blur_sigma[1] * r),
                                            **common)
        self.parts_aug = TwoViewXrayAugment(out_size=global_size, scale=(1.0, 1.0),
                                            ratio=(1.0, 1.0), rotation=0.0,
                                            brightness=brightness, contrast=contrast,
                                            jitter_prob=jitter_prob if jitter_parts else 0.0,
                                            blur_prob=0.0, mean=mean, std=std,
                                            channels=channels, num_views=1)
        self.global_size, self.local_size = int(global_size), int(local_size)
        self.num_local = int(num_local)
        self.mean, self.std, self.channels = float(mean), float(std), int(channels)

    def _fixed(self, img: np.ndarray) -> np.ndarray:
        v = resize_square(img, self.global_size)
        if self.parts_aug.jitter_prob > 0:
            v, _ = self.parts_aug.augment(v)  # identity geometry, photometric jitter only
        return to_network_input(np.clip(v, 0, 1), self.mean, self.std, self.channels)

    def transform(self, results: dict) -> dict:
        img = results.get('img')
        parts = results.get('ad_parts')
        if img is None or np.ndim(img) != 2 or parts is None or len(parts) != 4:
            raise InvalidInputError('AdamV2Views needs results["img"] (2D anchor) and '
                                    'results["ad_parts"] (4 quadrant boxes): put '
                                    'AnatomyDecomposerV2 before it.')
        img = np.ascontiguousarray(img, dtype=np.float32)
        g, _ = self.global_aug.augment(img)
        views = [self._fixed(img),
                 to_network_input(g, self.mean, self.std, self.channels)]
        for x0, y0, x1, y1 in parts:
            views.append(self._fixed(img[y0:y1, x0:x1]))
        local = [to_network_input(self.local_aug.augment(img)[0], self.mean, self.std,
                                  self.channels) for _ in range(self.num_local)]
        results['views'] = np.stack(views).astype(np.float32, copy=False)
        shape = (0, self.channels, self.local_size, self.local_size)
        results['local_views'] = np.stack(local).astype(np.float32, copy=False) if local \
            else np.zeros(shape, np.float32)
        return results
