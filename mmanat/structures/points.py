"""Named point sets in world millimetres (LPS), the format mmanat exchanges points in."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

import numpy as np

from ..utils.exceptions import InvalidInputError

SPACES = ('LPS', 'RAS')
# LPS <-> RAS flips the sign of x and y; the map is its own inverse.
_FLIP = np.array([-1.0, -1.0, 1.0])


def convert_space(xyz, from_space: str, to_space: str) -> np.ndarray:
    """Convert world points ``(..., 3)`` between the LPS and RAS conventions."""
    from_space, to_space = check_space(from_space), check_space(to_space)
    xyz = np.asarray(xyz, dtype=np.float64)
    if from_space == to_space:
        return xyz.copy()
    return xyz * _FLIP


def check_space(space: str) -> str:
    """Validate a coordinate-space name (case-insensitive) and return it upper-case."""
    up = str(space).upper()
    if up not in SPACES:
        raise InvalidInputError(f'unknown coordinate space {space!r}; use one of {SPACES}.')
    return up


@dataclass
class PointSet:
    """Named world points.

    Args:
        xyz: ``(N, 3)`` (or ``(N, 2)`` for a 2D image) world coordinates in mm, always stored
            in LPS (for 3D).
        names: one name per point; default ``p0, p1, ...``.
        extra: extra per-point columns (e.g. ``score``), each a sequence of length N.
    """

    xyz: np.ndarray
    names: Optional[List[str]] = None
    extra: Dict[str, Sequence] = field(default_factory=dict)

    def __post_init__(self):
        self.xyz = np.asarray(self.xyz, dtype=np.float64)
        if self.xyz.ndim == 1:
            self.xyz = self.xyz[None]
        if self.xyz.ndim != 2 or self.xyz.shape[1] not in (2, 3):
            raise InvalidInputError(
                f'points must be an (N, 3) or (N, 2) array, got shape {self.xyz.shape}.')
        if not np.all(np.isfinite(self.xyz)):
            bad = np.where(~np.all(np.isfinite(self.xyz), axis=1))[0]
            raise InvalidInputError(f'points {bad.tolist()} have non-finite coordinates.')
        n = len(self.xyz)
        if self.names is None:
            self.names = [f'p{i}' for i in range(n)]
        self.names = [str(v) for v in self.names]
        if len(self.names) != n:
            raise InvalidInputError(f'{len(self.names)} names given for {n} points.')
        for key, col in self.extra.items():
            if len(col) != n:
                raise InvalidInputError(f'extra column {key!r} has {len(col)} values, '
                                        f'expected {n} (one per point).')

    def __len__(self) -> int:
        return len(self.xyz)

    def in_space(self, space: str) -> np.ndarray:
        """The coordinates expressed in ``space`` ('LPS' or 'RAS')."""
        return convert_space(self.xyz, 'LPS', space)

    @classmethod
    def from_space(cls, xyz, space: str = 'LPS', names=None, extra=None) -> 'PointSet':
        """Build from coordinates given in ``space`` (converted to LPS inside)."""
        return cls(convert_space(xyz, space, 'LPS'), names=names, extra=dict(extra or {}))

    def index(self, name: str) -> int:
        try:
            return self.names.index(name)
        except ValueError:
            raise InvalidInputError(
                f'no point named {name!r}; available: {self.names[:20]}') from None

    def __getitem__(self, name: str) -> np.ndarray:
        return self.xyz[self.index(name)]

    def subset(self, idx) -> 'PointSet':
        idx = np.asarray(idx)
        if idx.dtype == bool:
            idx = np.nonzero(idx)[0]
        return PointSet(self.xyz[idx], [self.names[i] for i in idx],
                        {k: [v[i] for i in idx] for k, v in self.extra.items()})
