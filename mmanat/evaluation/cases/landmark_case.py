"""The container of a landmark benchmark case: two images and matching point lists."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List

import numpy as np

from ...structures.image import MedicalImage
from ...utils.exceptions import InvalidInputError


@dataclass
class LandmarkCase:
    """One benchmark case: find ``template_points`` of ``template`` in ``target``.

    Attributes:
        name: a short label (``'lung1/def0'``, ``'CT->MR/0'``).
        template, target: the two images, both 3D or both 2D (radiographs).
        template_points: ``(N, 3)`` query points (world LPS mm) in the template; ``(N, 2)``
            world mm for 2D images.
        target_points: ``(N, 3)`` (2D: ``(N, 2)``) ground-truth positions in the target.
        names: one name per point.
        meta: generator parameters (seed, deformation size, ...).
    """

    name: str
    template: MedicalImage
    target: MedicalImage
    template_points: np.ndarray
    target_points: np.ndarray
    names: List[str] = None
    meta: Dict = field(default_factory=dict)

    def __post_init__(self):
        if self.template.ndim != self.target.ndim:
            raise InvalidInputError(f'case {self.name}: a {self.template.ndim}D template and a '
                                    f'{self.target.ndim}D target; both must be 3D or both 2D.')
        d = self.ndim
        self.template_points = np.asarray(self.template_points, dtype=np.float64).reshape(-1, d)
        self.target_points = np.asarray(self.target_points, dtype=np.float64).reshape(-1, d)
        if self.template_points.shape != self.target_points.shape:
            raise InvalidInputError(f'case {self.name}: {len(self.template_points)} template '
                                    f'points but {len(self.target_points)} target points.')
        if self.names is None:
            self.names = [f'p{i}' for i in range(len(self.template_points))]

    @property
    def ndim(self) -> int:
        """3 for volumes, 2 for radiographs (the dimension of images and points)."""
        return self.template.ndim
