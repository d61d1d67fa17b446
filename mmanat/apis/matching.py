"""Matching points between embedded images: the public interface.

Methods (SAM, Yan et al., "SAM: Self-supervised learning of pixel-wise anatomical embeddings
in radiological images", IEEE TMI 2022, arXiv:2012.02383):

* ``'reference'``: the argmax of the similarity over every target fine voxel.
* ``'coarse_to_fine'``: candidate blocks of ``pool`` fine voxels scored first, then the exact
  argmax over the fine voxels of the ``topk`` best blocks plus a ``margin``. ``pool=(2, 8, 8)``
  makes the blocks the coarse voxels (the literal "coarse argmax, then local fine search"),
  which measured clearly less accurate (docs/en/user_guides/inference_and_matching.md).
* ``'consensus'``: a few thousand template body points matched at once, a RANSAC rigid then
  robust affine fit to them, and a robust local fit around each query
  (:mod:`mmanat.apis.consensus`).

The similarity and its fast evaluation are in :mod:`mmanat.apis.dense_scores`, the search in
:mod:`mmanat.apis.search`, the sub-voxel refinement (``refine=True``: the vertex of a
quadratic fit over the 3x3x3 neighbourhood of the argmax, at most half a fine voxel away) in
:mod:`mmanat.apis.refinement`, and the stable points of UAE (Bai et al., "UAE: Universal
anatomical embedding on multi-modality medical images", 2023, arXiv:2311.15111) in
:mod:`mmanat.apis.stable_points`. Points are world LPS mm; fine-grid indices are (z, y, x).

Maps of a 2D image (a radiograph embedded by the 2D SAM; :mod:`mmanat.structures.planar`)
are one-slice volumes in the world plane z = 0: :func:`match` takes ``(N, 2)`` world mm
``(x, y)`` points for them, lifts them to z = 0, runs the same searches in-plane (no margin
or pooling across the slice, 2D sub-pixel refinement, 2D stable-point neighbourhoods and 2D
consensus fits) and answers in 2D: ``(N, 2)`` world mm and pixel ``(column, row)`` indices.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from ..structures.embedding_map import EmbeddingMaps, GridGeometry
from ..structures.planar import is_planar, lift_points
from ..structures.points import PointSet
from ..utils.exceptions import InvalidInputError
from .consensus import consensus_search
from .dense_scores import PreparedTarget
from .search import search_matches
from .stable_points import stable_points_search

METHODS = ('reference', 'coarse_to_fine')
#: every ``method`` of :func:`match`: the searches of :data:`METHODS` and consensus matching
MATCH_METHODS = METHODS + ('consensus',)
#: the method of :func:`match` when none is given (without stable points)
DEFAULT_METHOD = 'consensus'


# ------------------------------------------------------------------------------ result
@dataclass
class MatchResult:
    """Matches of ``N`` query points in one target image.

    Attributes:
        points: ``(N, 3)`` world LPS mm of the matches (``(N, 2)`` world mm ``(x, y)`` for
            the maps of a 2D image).
        index: ``(N, 3)`` continuous ITK indices ``(i, j, k)`` in the ORIGINAL target image
            (2D: ``(N, 2)`` pixel ``(column, row)``).
        index_rounded: ``(N, 3)`` (2D: ``(N, 2)``) int64 ITK indices (rounded, clipped to
            the image).
        scores: ``(N,)`` similarity of each match (<= 1).
        method: ``'reference'``, ``'coarse_to_fine'`` (``+stable_points`` when used) or
            ``'consensus'``.
        extra: per-point extras, e.g. ``num_kept`` (stable points: pairs used),
            ``grid_points`` (the matches before sub-voxel refinement), ``num_local`` and
            ``global_points`` (consensus: local matches used, global-affine answers).
        info: facts about the whole call (consensus: the global affine, sample counts).
    """

    points: np.ndarray
    index: np.ndarray
    index_rounded: np.ndarray
    scores: np.ndarray
    method: str
    extra: Dict[str, np.ndarray] = field(default_factory=dict)
    info: Dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.points)

    def to_pointset(self, names=None) -> PointSet:
        """The matches as a :class:`PointSet` with ``score`` and rounded voxel index columns
        ``i, j, k`` (of the original target image; 2D: pixel ``column, row``)."""
        extra = {'score': [float(v) for v in self.scores]}
        cols = ('column', 'row') if self.points.shape[1] == 2 else ('i', 'j', 'k')
        for a, col in enumerate(cols):
            extra[col] = [int(v) for v in self.index_rounded[:, a]]
        if 'num_kept' in self.extra:
            extra['num_kept'] = [int(v) for v in self.extra['num_kept']]
        if 'num_local' in self.extra:
            extra['num_local'] = [int(v) for v in self.extra['num_local']]
        return PointSet(self.points, names=names, extra=extra)


# ------------------------------------------------------------------------------ helpers
def check_query_points(points, maps: EmbeddingMaps, names=None) -> np.ndarray:
    """Validate query points against the template's original image; returns ``(N, 3)``
    world LPS mm (2D points of a 2D image lifted to z = 0, see :func:`query_array`). Raises
    :class:`InvalidInputError` listing every point outside."""
    src = maps.meta.get('source_path') or '<template>'
    xyz, names = query_array(points, maps, names)
    return _check_points(xyz, maps.source_grid, src, names)


def _check_points(points, grid: GridGeometry, what: str, names=None) -> np.ndarray:
    if isinstance(points, PointSet):
        names = points.names if names is None else names
        points = points.xyz
    xyz = np.asarray(points, dtype=np.float64)
    if xyz.ndim == 1:
        xyz = xyz[None]
    if xyz.ndim != 2 or xyz.shape[1] != 3:
        raise InvalidInputError(f'points must be an (N, 3) array of world LPS mm, got shape '
                                f'{xyz.shape}.')
    if not np.all(np.isfinite(xyz)):
        bad = np.nonzero(~np.all(np.isfinite(xyz), axis=1))[0]
        raise InvalidInputError(f'points {bad[:20].tolist()} have non-finite coordinates.')
    inside = grid.contains_world(xyz, margin=0.5)
    if not np.all(inside):
        bad = np.nonzero(~inside)[0]
        names = names if names is not None else [f'p{i}' for i in range(len(xyz))]
        idx = grid.world_to_index(xyz[bad[:10]])
        listing = '; '.join(f'{names[i]} at {np.round(xyz[i], 2).tolist()} mm (index '
                            f'{np.round(ix, 1).tolist()})' for i, ix in zip(bad[:10], idx))
        more = f' and {len(bad) - 10} more' if len(bad) > 10 else ''
        lo, hi = grid.world_bounds()
        raise InvalidInputError(
            f'{what}: {len(bad)} query point(s) outside the template image: {listing}{more}. '
            f'The image spans {np.round(lo, 2).tolist()} to {np.round(hi, 2).tolist()} mm '
            '(LPS). Check the coordinate convention (RAS points need --space RAS) and that '
            'the points belong to the template.')
    return xyz


def _check_pair(template: EmbeddingMaps, target: EmbeddingMaps) -> Tuple[str, ...]:
    for m in (template, target):
        if not isinstance(m, EmbeddingMaps):
            raise InvalidInputError(f'expected EmbeddingMaps (from embed() or '
                                    f'load_embeddings()), got {type(m).__name__}.')
    if is_planar(template) != is_planar(target):
        dims = {True: 'a 2D image', False: 'a 3D volume'}
        raise InvalidInputError(
            f'template maps ({template.meta.get("source_path")}) are of '
            f'{dims[is_planar(template)]}, target maps ({target.meta.get("source_path")}) of '
            f'{dims[is_planar(target)]}; match 2D images with 2D images and volumes with '
            'volumes.')
    a, b = template.model.get('sha256'), target.model.get('sha256')
    if a and b and a != b:
        raise InvalidInputError(
            f'template maps ({template.model_id}, {template.meta.get("source_path")}) and '
            f'target maps ({target.model_id}, {target.meta.get("source_path")}) come from '
            'different models; embed both images with the same model.')
    if template.channels != target.channels:
        raise InvalidInputError(f'template maps have {template.channels} channels, target '
                                f'maps {target.channels}.')
    for lv in ('fine', 'coarse'):
        if template.strides[lv] != target.strides[lv]:
            raise InvalidInputError(f'{lv} strides differ: {template.strides[lv]} vs '
                                    f'{target.strides[lv]}.')
    levels = ['fine', 'coarse']
    if template.semantic is not None and target.semantic is not None:
        levels.append('semantic')
    return tuple(levels)


def query_array(points, maps: EmbeddingMaps, names=None):
    """Query points as ``(N, 3)`` world mm for ``maps`` and their names: 2D points ``(N, 2)``
    are lifted to z = 0 for the maps of a 2D image (3D points are accepted there only in the
    plane z = 0); volumes need 3D points.

    Raises:
        InvalidInputError: 2D points for a volume's maps, 3D points off the plane of a 2D
            image's maps, a shape that is neither.
    """
    if isinstance(points, PointSet):
        names = points.names if names is None else names
        points = points.xyz
    xyz = np.asarray(points, dtype=np.float64)
    if xyz.ndim == 1:
        xyz = xyz[None]
    src = maps.meta.get('source_path') or '<template>'
    if xyz.ndim != 2 or xyz.shape[1] not in (2, 3):
        raise InvalidInputError(f'points must be an (N, 3) (volumes) or (N, 2) (2D images) '
                                f'array of world mm, got shape {xyz.shape}.')
    if is_planar(maps):
        if xyz.shape[1] == 3 and np.any(np.abs(xyz[:, 2]) > 1e-6):
            raise InvalidInputError(
                f'{src}: the template is a 2D image, but the query points are 3D with z != 0; '
                'give (N, 2) world mm (x, y) in the image plane (2D point files: name,x,y).')
        return lift_points(xyz), names
    if xyz.shape[1] == 2:
        raise InvalidInputError(
            f'{src}: the template is a 3D volume, but the query points are 2D (x, y); give '
            '(N, 3) world LPS mm (point files: name,x,y,z). 2D points go with 2D images '
            '(radiographs) embedded by a 2D SAM.')
    return xyz, names


def planar_result(res: MatchResult) -> MatchResult:
    """A result on a 2D image's maps (one-slice volume, z = 0) brought back to 2D: points,
    indices and per-point extras ``(N, 2)``, a global ``affine`` of consensus ``(2, 3)``."""
    def drop(a):
        a = np.asarray(a)
        return a[:, :2].copy() if a.ndim == 2 and a.shape[1] == 3 else a

    extra = {k: drop(v) for k, v in res.extra.items()}
    info = dict(res.info)
    if 'affine' in info and np.shape(info['affine']) == (3, 4):
        aff = np.asarray(info['affine'])
        info['affine'] = np.concatenate([aff[:2, :2], aff[:2, 3:]], 1)
    return MatchResult(drop(res.points), drop(res.index), drop(res.index_rounded),
                       res.scores, res.method, extra, info)


def _to_result(target: EmbeddingMaps, cont: np.ndarray, scores: np.ndarray, method: str,
               extra=None) -> MatchResult:
    pts = target.grid('fine').array_index_to_world(cont)
    return _result_from_world(target, pts, scores, method, extra)


def _result_from_world(target: EmbeddingMaps, pts: np.ndarray, scores, method, extra=None):
    index = target.source_grid.world_to_index(pts)
    rounded = np.clip(np.rint(index), 0, target.source_grid.size - 1).astype(np.int64)
    return MatchResult(points=pts, index=index, index_rounded=rounded,
                       scores=np.asarray(scores, dtype=np.float64), method=method,
                       extra=dict(extra or {}))


class Matcher:
    """Matching between one template and one target, reusable across calls (the target's
    maps are laid out once). :func:`match` is the one-call interface.

    Args:
        template: the template's maps (queries are sampled from them).
        target: the target's maps, made by the same model.
        device: where to compute; default: the target maps' device.

    Raises:
        InvalidInputError: maps of different models, channels or strides.
    """

    def __init__(self, template: EmbeddingMaps, target: EmbeddingMaps, device=None):
        self.levels = _check_pair(template, target)
        self.planar = is_planar(template)
        self.device = torch.device(device) if device is not None else target.device
        self.template = template
        self.target = target
        self._tgt = None
        self._back = None

    @property
    def prepared(self) -> PreparedTarget:
        """The target laid out for scoring (built on first use)."""
        if self._tgt is None:
            self._tgt = PreparedTarget(self.target, self.levels, self.device)
        return self._tgt

    @property
    def prepared_back(self) -> PreparedTarget:
        """The template laid out as a target (for back-matching in stable points)."""
        if self._back is None:
            self._back = PreparedTarget(self.template, self.levels, self.device)
        return self._back

    def match(self, points_mm, method: Optional[str] = None, refine: bool = True,
              stable_points: bool = False, topk: int = 4, margin=1,
              pool=2, max_chunk_mb: Optional[float] = None, progress: bool = False,
              stable_cfg: Optional[dict] = None, names=None,
              consensus_cfg: Optional[dict] = None) -> MatchResult:
        """See :func:`match`."""
        res = self._match(points_mm, method, refine, stable_points, topk, margin, pool,
                          max_chunk_mb, progress, stable_cfg, names, consensus_cfg)
        return planar_result(res) if self.planar else res

    def _match(self, points_mm, method, refine, stable_points, topk, margin, pool,
               max_chunk_mb, progress, stable_cfg, names, consensus_cfg) -> MatchResult:
        if method is None:
            method = DEFAULT_METHOD if not stable_points else 'reference'
        if method not in MATCH_METHODS:
            raise InvalidInputError(f'unknown matching method {method!r}; use one of '
                                    f'{MATCH_METHODS}.')
        if method == 'consensus' and stable_points:
            raise InvalidInputError("method='consensus' and stable_points=True exclude each "
                                    'other; choose one.')
        if consensus_cfg is not None and method != 'consensus':
            raise InvalidInputError(f"consensus_cfg is for method='consensus', not "
                                    f'{method!r}.')
        if int(topk) < 1:
            raise InvalidInputError(f'topk must be >= 1, got {topk}.')
        margin = np.asarray(margin).reshape(-1)
        if margin.size == 1:
            margin = np.repeat(margin, 3)
        if margin.size != 3 or np.any(margin < 0) or np.any(np.mod(margin, 1) != 0):
            raise InvalidInputError(f'margin must be one or three ints >= 0 (z, y, x fine '
                                    f'voxels), got {margin.tolist()}.')
        margin = [int(v) for v in margin]
        pool = np.asarray(pool).reshape(-1)
        if pool.size == 1:
            pool = np.repeat(pool, 3)
        if pool.size != 3 or np.any(pool < 1) or np.any(np.mod(pool, 1) != 0):
            raise InvalidInputError(f'pool must be one or three ints >= 1 (z, y, x fine '
                                    f'voxels), got {pool.tolist()}.')
        pool = tuple(int(v) for v in pool)
        if self.planar:  # one slice: nothing to search or pool across it
            margin[0], pool = 0, (1,) + pool[1:]
        src = self.template.meta.get('source_path') or '<template>'
        pts, names = query_array(points_mm, self.template, names)
        pts = _check_points(pts, self.template.source_grid, src, names)
        if len(pts) == 0:
            e = np.zeros((0, 3))
            return MatchResult(e, e.copy(), e.astype(np.int64), np.zeros(0), method)
        if method == 'consensus':
            cfg = dict(consensus_cfg or {})
            ans, sc, extra, info = consensus_search(
                self.template, self.target, pts, self.prepared, refine, int(topk), margin,
                pool, max_chunk_mb, progress, cfg)
            res = _result_from_world(self.target, ans, sc, method, extra)
            res.info = info
            return res
        if stable_points:
            return self._stable(pts, method, topk, margin, pool, max_chunk_mb, progress,
                                **dict(stable_cfg or {}))
        cont, flat, scores = search_matches(self.template, pts, self.prepared, method, refine,
                                            int(topk), margin, pool, max_chunk_mb, progress)
        extra = {}
        if refine:
            Yf, Xf = self.prepared.fshape[1:]
            grid = np.stack([flat // (Yf * Xf), (flat // Xf) % Yf, flat % Xf], 1)
            extra['grid_points'] = self.target.grid('fine').array_index_to_world(grid)
        return _to_result(self.target, cont, scores, method, extra)

    def _stable(self, pts, method, topk, margin, pool, max_chunk_mb, progress, **cfg):
        """Stable points (:func:`~mmanat.apis.stable_points.stable_points_search`)."""
        ans, sc, nk = stable_points_search(self.template, self.target, pts, self.prepared,
                                           self.prepared_back, method, topk, margin, pool,
                                           max_chunk_mb, progress, **cfg)
        return _result_from_world(self.target, ans, sc, f'{method}+stable_points',
                                  dict(num_kept=nk))


def match(template_maps: EmbeddingMaps, points_mm, target_maps: EmbeddingMaps,
          method: Optional[str] = None, stable_points: bool = False, refine: bool = True,
          topk: int = 4, margin: Union[int, Sequence[int]] = 1,
          pool: Union[int, Sequence[int]] = 2, device=None,
          max_chunk_mb: Optional[float] = None, progress: bool = False,
          stable_cfg: Optional[dict] = None,
          consensus_cfg: Optional[dict] = None) -> MatchResult:
    """Find template points in a target image (SAM; UAE stable points with
    ``stable_points``).

    Args:
        template_maps: :class:`EmbeddingMaps` of the template (from :func:`embed` or
            :func:`load_embeddings`).
        points_mm: ``(N, 3)`` world LPS mm (or a :class:`PointSet`), 1 to 100,000+ points;
            for the maps of a 2D image ``(N, 2)`` world mm ``(x, y)``.
        target_maps: maps of the target, made by the same model.
        method: ``'consensus'`` (the default: global RANSAC rigid + robust affine over a few
            thousand body matches, then a robust local fit per query:
            :mod:`mmanat.apis.consensus`), ``'reference'`` (argmax over every fine voxel, as
            SAM; the default with ``stable_points``) or ``'coarse_to_fine'`` (coarse
            candidates, then a local fine search; see the module docstring). Consensus is the
            default because it wins on every cross-subject and deformation benchmark of
            docs/en/notes/benchmarks.md; single distinctive points can be found better by
            ``'reference'``.
        stable_points: UAE structural inference (125-voxel neighbourhood,
            4 forward/back iterations, score > 0.8, Huber-robust affine fit, mean vote).
        refine: sub-voxel parabolic refinement of the argmax.
        topk: candidate blocks searched per point (``coarse_to_fine``).
        margin: fine voxels searched beyond each candidate block (z, y, x).
        pool: candidate block size in fine voxels (z, y, x); ``(2, 8, 8)`` makes the blocks
            the coarse voxels (the literal "coarse argmax"; less accurate, see the docs).
        device: where to compute; default: the target maps' device.
        max_chunk_mb: memory for one chunk of points (default 256 MB on CPU, 1 GB on GPU).
        progress: progress bar over chunks.
        stable_cfg: overrides of the stable-points parameters (``radius=2``,
            ``iterations=4``, ``score_thr=0.8``, ``max_distance=200``,
            ``min_pairs_affine=8``, ``huber_scale=1.345``, ``irls_iters=10``).
        consensus_cfg: overrides of the consensus parameters
            (:data:`mmanat.apis.consensus.CONSENSUS_DEFAULTS`: ``n_points=4000``, ``seed=0``,
            ``ransac_threshold_mm=15``, ``local_radius_mm=40``, ``min_local=8``,
            ``min_affine=50``, ``outlier_mm=15``, ``refine_search_mm=0``,
            ``search='coarse_to_fine'``, and ``template_image`` (the template
            :class:`MedicalImage`: samples in its body mask) or ``mask``); with consensus,
            ``refine``/``topk``/``margin``/``pool`` apply to the sample matches.

    Returns:
        :class:`MatchResult`: world LPS points, continuous and rounded ITK voxel indices of the
        ORIGINAL target image, scores; for 2D maps ``(N, 2)`` world mm and pixel
        ``(column, row)`` indices.

    Raises:
        InvalidInputError: points outside the template (all of them listed), maps from
            different models, a bad ``method``, 2D points for a volume (or the reverse),
            maps of a 2D image matched with maps of a volume.
    """
    return Matcher(template_maps, target_maps, device).match(
        points_mm, method=method, refine=refine, stable_points=stable_points, topk=topk,
        margin=margin, pool=pool, max_chunk_mb=max_chunk_mb, progress=progress,
        stable_cfg=stable_cfg, consensus_cfg=consensus_cfg)
