"""Methods of the benchmarks and of the test loop: trained mmanat models as point mappers.

A *method* is any callable ``method(template, points_mm, target) -> (N, 3)`` predicted target
points (world LPS mm) with a ``name`` attribute: the baselines of
:mod:`mmanat.evaluation.baselines`, or :class:`MMAnatMethod` around a trained model. The
wall time of each call (registration, or embedding both images + matching) is the method's
time per case (:func:`timed_call`). On 2D cases (radiographs) the points are ``(N, 2)`` world
mm. A method may say which images it runs on with ``image_ndim`` (3: volumes, 2: 2D images,
absent or ``None``: both); :func:`method_unavailable` turns that and an ``unavailable``
message into the reason the runners print instead of numbers.
"""
from __future__ import annotations

import os.path as osp
import time
import traceback
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np

__all__ = ['MMAnatMethod', 'EmbeddingRegistrationMethod', 'mmanat_methods', 'timed_call',
           'method_unavailable', 'model_image_ndim']


def timed_call(method: Callable, template, points, target,
               log: Callable = print) -> Tuple[np.ndarray, float, Optional[str]]:
    """Run one method on one case; a failure is a result (all points missed), not a crash.

    Args:
        method: ``method(template, points_mm, target) -> (N, D)`` with a ``name``.
        template, target: the two images.
        points: ``(N, 3)`` query points (world LPS mm) in the template; ``(N, 2)`` for 2D
            images.
        log: where the failure message and traceback go.

    Returns:
        ``(predictions (N, D) world mm, NaN rows on failure; seconds; error message or
        None)``.
    """
    dim = np.asarray(points).shape[-1] if np.ndim(points) == 2 else template.ndim
    t0 = time.perf_counter()
    try:
        pred = np.asarray(method(template, points, target), dtype=np.float64).reshape(-1, dim)
        if pred.shape != np.asarray(points).reshape(-1, dim).shape:
            raise RuntimeError(f'returned {pred.shape[0]} points for {len(points)} queries')
        err = None
    except Exception as exc:  # a failing method is a result (misses), not a crash
        pred = np.full((len(points), dim), np.nan)
        err = f'{type(exc).__name__}: {exc}'
        log(f'  [{method.name}] failed: {err}')
        log(traceback.format_exc(limit=3))
    return pred, time.perf_counter() - t0, err


def method_unavailable(method, ndims: Sequence[int] = ()) -> Optional[str]:
    """Why ``method`` cannot run on cases of the image dimensions ``ndims``, or ``None``.

    The method's own ``unavailable`` message comes first (e.g. antspyx missing); then its
    ``image_ndim``: a 3D method (a volume model, ANTs) is not run on 2D images and a 2D model
    not on volumes.
    """
    unavailable = getattr(method, 'unavailable', None)
    if unavailable:
        return unavailable
    own = getattr(method, 'image_ndim', None)
    other = sorted({int(d) for d in ndims} - {own}) if own else []
    if other:
        kind = {2: '2D images', 3: 'volumes'}
        return (f'{kind.get(own, f"{own}D images")} only: not run on '
                f'{" or ".join(kind.get(d, f"{d}D images") for d in other)}')
    return None


def model_image_ndim(model) -> int:
    """The image dimension a model embeds: its ``image_ndim`` attribute when it has one, else
    what :func:`mmanat.apis.model.model_spatial_dims` reads from its weights, else 2 when a
    submodule is a :class:`mmanat.models.utils.Planar` wrapper (the 2D networks of the 2D SAM,
    run on one-slice volumes), else 3."""
    ndim = getattr(model, 'image_ndim', None)
    if ndim:
        return int(ndim)
    try:
        from ...apis.model import model_spatial_dims
        ndim = model_spatial_dims(model)
    except (ImportError, AttributeError):  # not a torch module, or an older mmanat.apis
        ndim = None
    if ndim:
        return int(ndim)
    modules = model.modules() if hasattr(model, 'modules') else ()
    return 2 if any(type(m).__name__ == 'Planar' for m in modules) else 3


class MMAnatMethod:
    """A trained mmanat model as a benchmark method: embed both images
    (:func:`mmanat.apis.embed`), then :func:`mmanat.apis.match` the points (naive argmax,
    with ``stable_points``, or ``match_method='consensus'``: consensus matching with its
    samples in the template's body mask). The time per case includes both embeddings."""

    def __init__(self, model, name: str, stable_points: bool = False,
                 match_method: str = 'reference', embed_kwargs: Optional[dict] = None,
                 model_name: Optional[str] = None, **match_kwargs):
        self.model, self.name = model, name
        #: the model's table name without the method suffix (``+stable``, ``+consensus``)
        self.model_name = model_name or name
        self.stable_points, self.match_method = stable_points, match_method
        self.embed_kwargs = dict(embed_kwargs or {})  # e.g. tile_size for large volumes
        self.match_kwargs = match_kwargs
        #: 2 for a 2D model (radiographs), 3 for a volume model (see :func:`model_image_ndim`)
        self.image_ndim = model_image_ndim(model)

    def __call__(self, template, points_mm, target) -> np.ndarray:
        """Predicted ``(N, 3)`` world LPS mm positions in ``target`` of the template's
        ``points_mm`` (2D images: ``(N, 2)`` world mm)."""
        from ...apis import embed, match
        t_maps = embed(self.model, template, **self.embed_kwargs)
        g_maps = embed(self.model, target, **self.embed_kwargs)
        kwargs = dict(self.match_kwargs)
        if self.match_method == 'consensus':  # samples in the template's body mask
            kwargs['consensus_cfg'] = dict(kwargs.get('consensus_cfg') or {},
                                           template_image=template)
        res = match(t_maps, np.asarray(points_mm, dtype=np.float64), g_maps,
                    method=self.match_method, stable_points=self.stable_points, **kwargs)
        return np.asarray(res.points, dtype=np.float64)


class EmbeddingRegistrationMethod:
    """Embedding-driven registration (UAE-M, :func:`mmanat.apis.register_with_embeddings`) as
    a benchmark method: the target (moving) is registered to the template (fixed) from
    confident grid matches (rigid, robust affine, optional SimpleITK B-spline), and the
    template points are mapped through the transform. ``last_result`` keeps the latest
    :class:`~mmanat.apis.EmbeddingRegistration`."""

    #: the embedding-driven registration works on volumes
    image_ndim = 3

    def __init__(self, model, name: str, deformable: str = 'bspline', **kwargs):
        self.model, self.name, self.deformable = model, name, deformable
        self.kwargs = dict(kwargs)
        self.last_result = None

    def __call__(self, template, points_mm, target) -> np.ndarray:
        from ...apis import register_with_embeddings
        self.last_result = register_with_embeddings(
            self.model, target, template, deformable=self.deformable, warp=False,
            **self.kwargs)
        return self.last_result.map_fixed_to_moving(np.asarray(points_mm, dtype=np.float64))


def mmanat_methods(configs: Sequence[str], checkpoints: Sequence[Optional[str]],
                   names: Optional[Sequence[str]] = None, device: Optional[str] = None,
                   stable: bool = True, consensus: bool = True,
                   direct: bool = True) -> List[MMAnatMethod]:
    """:class:`MMAnatMethod` s (with ``direct``, naive; with ``stable``, stable-points; with
    ``consensus``, consensus matching) for each config / checkpoint pair."""
    from ...apis import init_model
    methods = []
    for i, cfg in enumerate(configs):
        ckpt = checkpoints[i] if i < len(checkpoints) else None
        model = init_model(cfg, ckpt, device=device)
        base = names[i] if names and i < len(names) else osp.splitext(osp.basename(cfg))[0]
        if direct:
            methods.append(MMAnatMethod(model, base, model_name=base))
        if stable:
            methods.append(MMAnatMethod(model, base + '+stable', stable_points=True,
                                        model_name=base))
        if consensus:
            methods.append(MMAnatMethod(model, base + '+consensus', match_method='consensus',
                                        model_name=base))
    return methods
