"""Index <-> world conversions shared by every object that has a voxel grid.

A grid is ``spacing``, ``origin``, ``direction`` in ITK order ``(x, y[, z])`` plus a numpy-order
``shape`` ``(z, y[, x])``; the world point of the continuous ITK index ``(i, j, k)`` is
``origin + direction @ (spacing * (i, j, k))`` (LPS mm). :class:`MedicalImage` (with pixels)
and :class:`GridGeometry` (an embedding map's grid, no pixels) both use this mixin.
"""
import numpy as np


class GridMixin:
    """Conversions for classes with ``spacing``, ``origin``, ``direction`` and ``shape``."""

    @property
    def size(self) -> np.ndarray:
        """Grid size in ITK order ``(nx, ny[, nz])``."""
        return np.array(tuple(self.shape)[::-1], dtype=np.int64)

    @property
    def affine(self) -> np.ndarray:
        """Homogeneous matrix mapping ITK index ``(i, j[, k], 1)`` to LPS mm."""
        n = len(self.spacing)
        mat = np.eye(n + 1)
        mat[:n, :n] = self.direction * self.spacing[None, :]
        mat[:n, n] = self.origin
        return mat

    def index_to_world(self, index) -> np.ndarray:
        """ITK continuous indices ``(..., ndim)`` (order i, j[, k]) -> world LPS mm."""
        index = np.asarray(index, dtype=np.float64)
        return index @ (self.direction * self.spacing[None, :]).T + self.origin

    def world_to_index(self, points) -> np.ndarray:
        """World LPS mm ``(..., ndim)`` -> continuous ITK indices (order i, j[, k])."""
        points = np.asarray(points, dtype=np.float64)
        inv = np.linalg.inv(self.direction * self.spacing[None, :])
        return (points - self.origin) @ inv.T

    def array_index_to_world(self, array_index) -> np.ndarray:
        """Numpy-order indices ``(z, y, x)`` -> world LPS mm."""
        return self.index_to_world(np.asarray(array_index, dtype=np.float64)[..., ::-1])

    def world_to_array_index(self, points) -> np.ndarray:
        """World LPS mm -> continuous numpy-order indices ``(z, y, x)``."""
        return self.world_to_index(points)[..., ::-1]

    def contains_world(self, points, margin: float = 0.5) -> np.ndarray:
        """Boolean mask: which world points fall inside the grid (``margin`` in voxels beyond
        the outer voxel centres; 0.5 = the voxel edges)."""
        idx = self.world_to_index(points)
        return np.all((idx >= -margin) & (idx <= self.size - 1 + margin), axis=-1)

    def world_bounds(self):
        """Axis-aligned world bounding box ``(min_xyz, max_xyz)`` of the voxel centres."""
        n = len(self.spacing)
        corners = np.array(np.meshgrid(*[[0, s - 1] for s in self.size], indexing='ij'))
        world = self.index_to_world(corners.reshape(n, -1).T)
        return world.min(0), world.max(0)
