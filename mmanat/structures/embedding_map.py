"""Embedding maps that carry the geometry of their voxel grids.

A network such as SAM turns the 2 mm network-input volume into several maps (``fine`` at
stride (2, 2, 2), ``coarse`` at stride (4, 16, 16), optionally ``semantic`` at stride 2).
:class:`EmbeddingMaps` keeps, for each map, a :class:`GridGeometry` derived *exactly* from the
input grid, so any map location converts to world millimetres (LPS) and back:

* a level with stride ``s = (sz, sy, sx)`` has its voxel ``idx`` (numpy order) centred on the
  continuous input index ``s * idx + (s - 1) / 2`` (the centre of the ``s`` input voxels it
  pools), i.e. its spacing is ``input spacing * s`` and its origin is the input origin moved
  by ``direction @ (input spacing * (s - 1) / 2)`` (ITK order);
* the source (original, before reorientation and resampling) image geometry is kept, so a
  match converts to ITK voxel indices of the original image.

The maps also record which model made them (config name + checkpoint hash) so that caches
made by another model are refused.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Dict, Optional, Sequence, Tuple

import numpy as np

from ..utils.exceptions import InvalidInputError
from .grid import GridMixin

if TYPE_CHECKING:  # torch is imported lazily: mmanat.structures stays numpy-only to import
    import torch

LEVELS = ('fine', 'coarse', 'semantic')


def _vec3(value, what: str) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64).reshape(-1)
    if arr.size == 1:
        arr = np.repeat(arr, 3)
    if arr.size != 3 or not np.all(np.isfinite(arr)):
        raise InvalidInputError(f'grid {what} must be 3 finite values (ITK order x, y, z), '
                                f'got {np.asarray(value).tolist()}.')
    return arr


@dataclass
class GridGeometry(GridMixin):
    """The geometry of a 3D voxel grid, with the conventions of
    :class:`~mmanat.structures.MedicalImage` but without pixel data.

    Args:
        shape: numpy-order size ``(z, y, x)``.
        spacing: voxel size in mm, ITK order ``(x, y, z)``.
        origin: world LPS mm of the centre of voxel index 0.
        direction: 3x3 matrix whose columns are the world directions of the ITK index axes.
    """

    shape: Tuple[int, int, int]
    spacing: Sequence[float] = 1.0
    origin: Sequence[float] = 0.0
    direction: Any = None

    def __post_init__(self):
        self.shape = tuple(int(v) for v in self.shape)
        if len(self.shape) != 3 or min(self.shape) < 1:
            raise InvalidInputError(f'grid shape must be 3 positive ints (z, y, x), got '
                                    f'{self.shape}.')
        self.spacing = _vec3(self.spacing, 'spacing')
        if np.any(self.spacing <= 0):
            raise InvalidInputError(f'grid spacing {self.spacing.tolist()} must be > 0.')
        self.origin = _vec3(self.origin, 'origin')
        d = np.eye(3) if self.direction is None else np.asarray(self.direction, np.float64)
        if d.size != 9:
            raise InvalidInputError(f'grid direction must be 3x3, got {d.size} values.')
        self.direction = d.reshape(3, 3)

    # ---------------------------------------------------------------- constructors
    @classmethod
    def from_image(cls, image) -> 'GridGeometry':
        """The grid of a 3D :class:`MedicalImage`."""
        if image.ndim != 3:
            raise InvalidInputError(
                f'{image.path or "<in-memory image>"}: a 3D volume is required, got a '
                f'{image.ndim}D image.')
        return cls(image.shape, image.spacing.copy(), image.origin.copy(),
                   image.direction.copy())

    def strided(self, stride: Sequence[int], shape: Optional[Sequence[int]] = None
                ) -> 'GridGeometry':
        """The grid of a map computed from this grid with ``stride`` (numpy order z, y, x):
        voxel ``idx`` is centred on this grid's continuous index ``stride * idx +
        (stride - 1) / 2``. ``shape`` defaults to ``ceil(self.shape / stride)``."""
        s_zyx = np.asarray(stride, dtype=np.float64).reshape(-1)
        if s_zyx.size != 3 or np.any(s_zyx <= 0):
            raise InvalidInputError(f'stride must be 3 positive numbers (z, y, x), got '
                                    f'{np.asarray(stride).tolist()}.')
        s_xyz = s_zyx[::-1]
        if shape is None:
            shape = tuple(int(np.ceil(n / s)) for n, s in zip(self.shape, s_zyx))
        origin = self.origin + self.direction @ (self.spacing * (s_xyz - 1) / 2)
        return GridGeometry(shape, self.spacing * s_xyz, origin, self.direction.copy())

    # ---------------------------------------------------------------- properties
    @property
    def num_voxels(self) -> int:
        return int(np.prod(self.shape))

    def allclose(self, other: 'GridGeometry', tol: float = 1e-5) -> bool:
        """True if ``other`` is the same grid (shape, spacing, origin, direction)."""
        return (tuple(self.shape) == tuple(other.shape)
                and np.allclose(self.spacing, other.spacing, atol=tol)
                and np.allclose(self.origin, other.origin, atol=tol)
                and np.allclose(self.direction, other.direction, atol=tol))

    # ---------------------------------------------------------------- (de)serialisation
    def to_dict(self) -> dict:
        """Plain lists/ints (JSON- and ``torch.load(weights_only=True)``-safe)."""
        return dict(shape=list(self.shape), spacing=self.spacing.tolist(),
                    origin=self.origin.tolist(), direction=self.direction.reshape(-1).tolist())

    @classmethod
    def from_dict(cls, d: dict) -> 'GridGeometry':
        return cls(d['shape'], d['spacing'], d['origin'], d['direction'])

    def __repr__(self) -> str:
        sp = np.round(self.spacing, 4).tolist()
        return (f'GridGeometry(shape(zyx)={self.shape}, spacing={sp}, '
                f'origin={np.round(self.origin, 3).tolist()})')


@dataclass
class EmbeddingMaps:
    """Embedding maps of one image with the geometry of every map grid.

    Args:
        maps: level name (``'fine'``, ``'coarse'``, optional ``'semantic'``) -> float tensor
            ``(C, z, y, x)``, unit length over channels.
        strides: level name -> stride ``(z, y, x)`` relative to the network input grid.
        input_grid: geometry of the 2 mm network-input volume (after reorientation and
            resampling, before padding).
        source_grid: geometry of the original image the maps were computed from.
        model: identity of the model, ``dict(config=..., checkpoint=..., sha256=...)``.
        meta: free-form information (source path, modality, preprocessing, tiling, ...).

    The grid of every level is derived from ``input_grid`` and the stride (see the module
    docstring); map sizes are ``ceil(input size / stride)``.
    """

    maps: Dict[str, 'torch.Tensor']
    strides: Dict[str, Tuple[int, int, int]]
    input_grid: GridGeometry
    source_grid: GridGeometry
    model: Dict[str, Any] = field(default_factory=dict)
    meta: Dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        import torch
        if 'fine' not in self.maps or 'coarse' not in self.maps:
            raise InvalidInputError(
                f'embedding maps need a fine and a coarse level, got {sorted(self.maps)}.')
        unknown = set(self.maps) - set(LEVELS)
        if unknown:
            raise InvalidInputError(f'unknown embedding levels {sorted(unknown)}; known: '
                                    f'{LEVELS}.')
        self.strides = {k: tuple(int(v) for v in self.strides[k]) for k in self.maps}
        channels = set()
        for name, t in self.maps.items():
            if not isinstance(t, torch.Tensor) or t.dim() != 4:
                raise InvalidInputError(
                    f'embedding level {name!r} must be a (C, z, y, x) tensor, got '
                    f'{getattr(t, "shape", type(t))}.')
            channels.add(t.shape[0])
        if len(channels) != 1:
            raise InvalidInputError(
                'all embedding levels must have the same number of channels, got '
                f'{ {k: int(t.shape[0]) for k, t in self.maps.items()} }.')
        self.grids = {k: self.input_grid.strided(self.strides[k], t.shape[1:])
                      for k, t in self.maps.items()}

    # ---------------------------------------------------------------- access
    @property
    def fine(self) -> 'torch.Tensor':
        return self.maps['fine']

    @property
    def coarse(self) -> 'torch.Tensor':
        return self.maps['coarse']

    @property
    def semantic(self) -> Optional['torch.Tensor']:
        return self.maps.get('semantic')

    @property
    def levels(self) -> Tuple[str, ...]:
        """Level names present, in the order fine, coarse, semantic."""
        return tuple(k for k in LEVELS if k in self.maps)

    @property
    def channels(self) -> int:
        return int(self.fine.shape[0])

    @property
    def device(self) -> 'torch.device':
        return self.fine.device

    @property
    def model_id(self) -> str:
        """Short model identity ``config@sha256[:12]`` (``'unknown'`` if not recorded)."""
        return model_id_of(self.model)

    def grid(self, level: str) -> GridGeometry:
        """The :class:`GridGeometry` of ``level``."""
        if level not in self.grids:
            raise InvalidInputError(f'no embedding level {level!r}; present: {self.levels}.')
        return self.grids[level]

    # ---------------------------------------------------------------- conversions
    def world_to_map_index(self, level: str, points) -> np.ndarray:
        """World LPS mm ``(..., 3)`` -> continuous numpy-order indices ``(z, y, x)`` of
        ``level``'s map."""
        return self.grid(level).world_to_array_index(points)

    def map_index_to_world(self, level: str, index) -> np.ndarray:
        """Numpy-order map indices ``(..., 3)`` ``(z, y, x)`` of ``level`` -> world LPS mm."""
        return self.grid(level).array_index_to_world(index)

    def world_to_source_index(self, points) -> np.ndarray:
        """World LPS mm -> continuous ITK indices ``(i, j, k)`` of the original image."""
        return self.source_grid.world_to_index(points)

    def source_index_to_world(self, index) -> np.ndarray:
        """Continuous ITK indices of the original image -> world LPS mm."""
        return self.source_grid.index_to_world(index)

    # ---------------------------------------------------------------- copies
    def _with_maps(self, maps: Dict[str, 'torch.Tensor']) -> 'EmbeddingMaps':
        return EmbeddingMaps(maps, dict(self.strides), self.input_grid, self.source_grid,
                             dict(self.model), dict(self.meta))

    def to(self, device=None, dtype=None) -> 'EmbeddingMaps':
        """A copy with every map moved/cast (``torch.Tensor.to`` semantics)."""
        return self._with_maps({k: v.to(device=device, dtype=dtype)
                                for k, v in self.maps.items()})

    def cpu(self) -> 'EmbeddingMaps':
        return self.to('cpu')

    def float(self) -> 'EmbeddingMaps':
        import torch
        return self.to(dtype=torch.float32)

    @property
    def nbytes(self) -> int:
        return int(sum(t.numel() * t.element_size() for t in self.maps.values()))

    def __repr__(self) -> str:
        lv = ', '.join(f'{k}={tuple(v.shape)}@{self.strides[k]}' for k, v in self.maps.items())
        return (f'EmbeddingMaps({lv}, model={self.model_id}, '
                f'source={self.meta.get("source_path")!r})')


def model_id_of(identity) -> str:
    """``config@sha256[:12]`` from a model identity dict (or the string itself)."""
    if identity is None:
        return 'unknown'
    if isinstance(identity, str):
        return identity
    config = identity.get('config') or 'unknown-config'
    sha = identity.get('sha256') or ''
    return f'{config}@{sha[:12]}' if sha else str(config)
