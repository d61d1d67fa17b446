"""Aggressive contrast augmentation for CT <-> MR (UAE-M: Bai et al., 2023):
``RandHistogramShift``.

Per image (or per SAM view), inside the body mask only:

1. intensities are mapped to ``u`` in [0, 1] with a range ``[lo, hi]``: by default the fixed
   normalised range ``intensity_range`` (``(-50, 205)``, the output of the CT and MR
   normalisation rules); with probability ``rescale_prob`` (or always when
   ``intensity_range=None``) the min-max of the masked voxels, so that the control points
   spread over the intensities the image really has;
2. with probability ``prob`` a random monotone piecewise-linear curve is applied: ``n`` control
   points (``n`` uniform in ``num_control_points``, both ends included) at
   ``xp = linspace(0, 1, n)``, values ``yp`` = 0, sorted uniform draws, 1 (so the curve is
   non-decreasing and maps [0, 1] onto [0, 1]); evaluated with one vectorised ``np.interp``;
3. with probability ``invert_prob`` the result is inverted, ``u -> 1 - u``;
4. ``u`` is mapped back to ``[lo, hi]``.

Voxels outside the mask keep their exact values. Step 2 and 3 are drawn independently, so a
view can be inverted without a curve (then exactly ``lo + hi - x``).

``mode='released'`` draws as the released UAE code does (repository
``alibaba-damo-academy/self-supervised-anatomical-embedding-v2``,
``sam/datasets/piplines/process3d.py``, class ``RandHistogramShift``, used with its defaults
``prob=0.9, num_control_points=(5, 15)`` by ``configs/samv2/samv2_ct_mri_inter.py``): with
probability ``prob`` one draw does everything, otherwise the image is untouched; inside it
the inversion (probability ``invert_prob``, 0.3 there) comes *before* the curve
(``u -> curve(1 - u)``), the control-point range is the image min-max with probability
``rescale_prob`` (0.3 there), and the curve values are drawn one after the other,
``yp[i] ~ U(yp[i - 1], xp[i + 1])`` with ``xp = linspace(0, 1, n)`` (so each point stays
below the next reference point), instead of sorted uniform draws.
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import numpy as np
from mmcv.transforms import BaseTransform

from mmanat.registry import TRANSFORMS
from mmanat.structures.body import body_mask
from mmanat.structures.image import MedicalImage
from mmanat.utils.exceptions import InvalidInputError

__all__ = ['RandHistogramShift', 'histogram_shift']


def histogram_shift(values: np.ndarray, lo: float, hi: float,
                    yp: Optional[np.ndarray] = None, invert: bool = False,
                    invert_first: bool = False) -> np.ndarray:
    """Apply a monotone piecewise-linear curve (and/or an inversion) to ``values``.

    Args:
        values: intensities (any shape).
        lo, hi: the range mapped to [0, 1] (values outside are clipped to it).
        yp: curve values at ``linspace(0, 1, len(yp))`` (non-decreasing, ``yp[0] = 0``,
            ``yp[-1] = 1``); ``None`` = identity.
        invert: apply ``u -> 1 - u`` after the curve (before it with ``invert_first``).
        invert_first: invert before the curve (released UAE order).

    Returns:
        float32 array of the same shape, in ``[lo, hi]``.
    """
    v = np.asarray(values, dtype=np.float64)
    if not hi > lo:  # flat image: nothing to reshape (an inversion of a constant is itself)
        return v.astype(np.float32)
    u = np.clip((v - lo) / (hi - lo), 0.0, 1.0)
    if invert and invert_first:
        u = 1.0 - u
    if yp is not None:
        yp = np.asarray(yp, dtype=np.float64)
        u = np.interp(u, np.linspace(0.0, 1.0, len(yp)), yp)
    if invert and not invert_first:
        u = 1.0 - u
    return (lo + u * (hi - lo)).astype(np.float32)


@TRANSFORMS.register_module()
class RandHistogramShift(BaseTransform):
    """Random monotone intensity curve + inversion inside the body mask (UAE-M).

    Works on either

    * the SAM two-view pipeline (``results['view_imgs']`` ``(V, D, H, W)``, placed after
      ``NormalizeViewIntensity`` and before ``PackSAMInputs``), one independent draw per
      view (``per_view=True``) or one shared draw; or
    * a whole volume: ``results[key]`` a :class:`MedicalImage` (or array), ``key='image'``.

    Body mask, first available of:

    * views: ``results['view_body_mask']`` ``(V, D, H, W)``; ``results[mask_key]`` (a
      MedicalImage on the grid of ``results['image']``) resampled (nearest) onto each view
      grid of ``results['view_geometries']``; else computed per view with
      :func:`~mmanat.structures.body.body_mask` (Otsu threshold on the view);
      always intersected with ``view_valid``;
    * volume: ``results[mask_key]``; else computed with ``body_mask`` (modality rule).

    Added key: ``histogram_shift`` - list (one entry per image / view) of dicts with the
    drawn ``num_points``, ``yp`` (or None), ``invert``, ``rescaled``, ``range``; also copied to
    ``two_view_meta['histogram_shift']`` in view mode.

    Args:
        prob: probability of applying a random curve (0.9).
        num_control_points: inclusive range of the number of control points (5, 15).
        invert_prob: probability of the inversion ``1 - u`` (0.3).
        rescale_prob: probability of using the masked image min-max as the control-point
            range instead of ``intensity_range`` (0.3).
        intensity_range: fixed range of the normalised intensities; ``None`` = always the
            image min-max.
        key: volume key used when there are no views (``'image'``).
        mask_key: key of a precomputed body mask (``'body_mask'``).
        per_view: independent draws for each view.
        mask_threshold: threshold for a computed mask (``None``: modality rule / Otsu).
        mask_min_object_size: ``min_object_size`` of a computed mask (pixels per slice).
        mask_radius: morphology radius of a computed mask.
        mode: ``'independent'`` (curve, inversion after it and range drawn independently) or
            ``'released'`` (the released UAE draw: module docstring).
    """

    def __init__(self, prob: float = 0.9, num_control_points: Sequence[int] = (5, 15),
                 invert_prob: float = 0.3, rescale_prob: float = 0.3,
                 intensity_range: Optional[Tuple[float, float]] = (-50.0, 205.0),
                 key: str = 'image', mask_key: str = 'body_mask', per_view: bool = True,
                 mask_threshold: Optional[float] = None, mask_min_object_size: int = 200,
                 mask_radius: int = 2, mode: str = 'independent'):
        if mode not in ('independent', 'released'):
            raise InvalidInputError(f"RandHistogramShift: mode={mode!r}; use 'independent' or "
                                    "'released'.")
        for name, p in (('prob', prob), ('invert_prob', invert_prob),
                        ('rescale_prob', rescale_prob)):
            if not 0.0 <= float(p) <= 1.0:
                raise InvalidInputError(f'RandHistogramShift: {name} must be in [0, 1], got {p}.')
        ncp = tuple(int(v) for v in np.asarray(num_control_points).reshape(-1))
        if len(ncp) == 1:
            ncp = ncp * 2
        if len(ncp) != 2 or ncp[0] < 2 or ncp[1] < ncp[0]:
            raise InvalidInputError(
                f'RandHistogramShift: num_control_points must be (low, high) with '
                f'2 <= low <= high, got {num_control_points}.')
        if intensity_range is not None:
            intensity_range = (float(intensity_range[0]), float(intensity_range[1]))
            if not intensity_range[1] > intensity_range[0]:
                raise InvalidInputError(f'RandHistogramShift: intensity_range must be (low, '
                                        f'high) with low < high, got {intensity_range}.')
        self.prob = float(prob)
        self.num_control_points = ncp
        self.invert_prob = float(invert_prob)
        self.rescale_prob = float(rescale_prob)
        self.intensity_range = intensity_range
        self.key = key
        self.mask_key = mask_key
        self.per_view = bool(per_view)
        self.mask_threshold = mask_threshold
        self.mask_min_object_size = int(mask_min_object_size)
        self.mask_radius = int(mask_radius)
        self.mode = mode

    # ------------------------------------------------------------------ draws
    def _draw(self) -> dict:
        """One random draw (uses the global numpy RNG, seeded per worker by mmengine)."""
        if self.mode == 'released':
            return self._draw_released()
        apply_curve = bool(np.random.random_sample() < self.prob)
        invert = bool(np.random.random_sample() < self.invert_prob)
        rescaled = bool(self.intensity_range is None
                        or np.random.random_sample() < self.rescale_prob)
        yp, n = None, 0
        if apply_curve:
            n = int(np.random.randint(self.num_control_points[0],
                                      self.num_control_points[1] + 1))
            inner = np.sort(np.random.random_sample(n - 2))
            yp = np.concatenate([[0.0], inner, [1.0]])
        return dict(num_points=n, yp=yp, invert=invert, rescaled=rescaled)

    def _draw_released(self) -> dict:
        """The released draw: all or nothing with ``prob``; invert before the curve."""
        if not np.random.random_sample() < self.prob:
            return dict(num_points=0, yp=None, invert=False, rescaled=False,
                        invert_first=True)
        n = int(np.random.randint(self.num_control_points[0], self.num_control_points[1] + 1))
        xp = np.linspace(0.0, 1.0, n)
        yp = xp.copy()
        for i in range(1, n - 1):  # sequential: each draw depends on the previous one
            yp[i] = np.random.uniform(yp[i - 1], xp[i + 1])
        invert = bool(np.random.random_sample() < self.invert_prob)
        rescaled = bool(self.intensity_range is None
                        or np.random.random_sample() < self.rescale_prob)
        return dict(num_points=n, yp=yp, invert=invert, rescaled=rescaled, invert_first=True)

    def _apply(self, arr: np.ndarray, mask: np.ndarray, draw: dict) -> np.ndarray:
        out = np.array(arr, dtype=np.float32, copy=True)
        vals = out[mask]
        if vals.size == 0:
            draw['range'] = None
            return out
        if draw['rescaled']:
            lo, hi = float(vals.min()), float(vals.max())
        else:
            lo, hi = self.intensity_range
        draw['range'] = (lo, hi)
        if draw['yp'] is None and not draw['invert']:
            return out
        out[mask] = histogram_shift(vals, lo, hi, draw['yp'], draw['invert'],
                                    draw.get('invert_first', False))
        return out

    # ------------------------------------------------------------------ masks
    def _computed_mask(self, arr: np.ndarray, modality: Optional[str]) -> np.ndarray:
        mask = body_mask(arr, threshold=self.mask_threshold, modality=modality,
                         radius=self.mask_radius, min_object_size=self.mask_min_object_size)
        return mask

    def _view_masks(self, results: dict, views: np.ndarray) -> np.ndarray:
        valid = results.get('view_valid')
        valid = np.ones(views.shape, bool) if valid is None else np.asarray(valid, bool)
        if results.get('view_body_mask') is not None:
            masks = np.asarray(results['view_body_mask']) > 0
        elif isinstance(results.get(self.mask_key), MedicalImage) and \
                results.get('view_geometries'):
            from .two_view_crop import sample_on_grid
            m = results[self.mask_key]
            m = m.with_array(m.array.astype(np.float32))
            masks = np.stack([sample_on_grid(m, g, 0.0, order=0)[0] > 0.5
                              for g in results['view_geometries']])
        else:
            # views are normalised already: an Otsu threshold, not the HU rule
            masks = np.stack([self._computed_mask(v, None) for v in views])
        if masks.shape != views.shape:
            raise InvalidInputError(f'RandHistogramShift: view mask shape {masks.shape} differs '
                                    f'from view_imgs {views.shape}.')
        return masks & valid

    # ------------------------------------------------------------------ main
    def transform(self, results: dict) -> dict:
        if results.get('view_imgs') is not None:
            views = np.asarray(results['view_imgs'], dtype=np.float32)
            masks = self._view_masks(results, views)
            shared = None if self.per_view else self._draw()
            out, record = np.empty_like(views), []
            for v in range(len(views)):  # 2 views: a loop over images, not voxels
                draw = dict(shared) if shared is not None else self._draw()
                out[v] = self._apply(views[v], masks[v], draw)
                record.append(draw)
            results['view_imgs'] = out
            results['histogram_shift'] = record
            if isinstance(results.get('two_view_meta'), dict):
                results['two_view_meta']['histogram_shift'] = record
            return results
        if self.key not in results:
            raise InvalidInputError(
                f'RandHistogramShift: results have neither "view_imgs" nor {self.key!r} (keys: '
                f'{sorted(results)}).')
        value = results[self.key]
        arr = value.array if isinstance(value, MedicalImage) else np.asarray(value)
        m = results.get(self.mask_key)
        if m is not None:
            mask = (m.array if isinstance(m, MedicalImage) else np.asarray(m)) > 0
            if mask.shape != arr.shape:
                raise InvalidInputError(
                    f'RandHistogramShift: results[{self.mask_key!r}] shape {mask.shape} '
                    f'differs from results[{self.key!r}] shape {arr.shape}.')
        else:
            modality = results.get('modality') or getattr(value, 'modality', None)
            mask = self._computed_mask(arr, modality)
        draw = self._draw()
        new = self._apply(arr, mask, draw)
        results[self.key] = value.with_array(new) if isinstance(value, MedicalImage) else new
        results['histogram_shift'] = [draw]
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(prob={self.prob}, '
                f'num_control_points={self.num_control_points}, '
                f'invert_prob={self.invert_prob}, rescale_prob={self.rescale_prob}, '
                f'intensity_range={self.intensity_range}, per_view={self.per_view}, '
                f'mode={self.mode!r})')
