"""Random synthetic torso phantoms (chest-abdomen-pelvis) with named landmarks: the model.

:class:`PhantomModel` is the analytic anatomy of one subject: an ordered list of painting
items (label, shape, which labels it may overwrite), the landmarks in the template frame and
the deformation that places the template in the world. Its recipe is split by region:

* :mod:`.torso`: body size, spine curve, body outline, world placement and deformation, body
  wall and CT table;
* :mod:`.skeleton`: spine, pelvis and femurs, chest wall;
* :mod:`.abdomen` and :mod:`.thorax`: the organs, vessels and airways;

built from the shapes of :mod:`.shapes` with the paint rules of :mod:`.paint_rules`, and
painted on the canvases of :mod:`.canvas`. Lesions and the landmark check are in
:mod:`.lesions`.

:func:`~.subject.generate_subject` draws a subject and paints its label map. Landmark
positions are exact: they are analytic points of the shapes (organ centres, kidney poles,
vertebral body centres, the top of the aortic arch centreline, the tracheal bifurcation, ...)
mapped to world coordinates through the inverse of the deformation.

Patient axes (world LPS): x increases to the patient's left, y to posterior, z to superior;
the head is at high z. Arrays are ``(z, y, x)``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from ...structures import MedicalImage, PointSet
from .abdomen import add_kidneys, add_lower_abdomen, add_psoas, add_upper_abdomen
from .anatomy import LANDMARK_NAMES
from .canvas import GridCanvas, PointCanvas
from .paint_rules import label_id
from .shapes import Shape
from .skeleton import add_chest_wall, add_pelvis, add_spine
from .thorax import add_diaphragm, add_heart, add_lungs, add_mediastinum
from .torso import add_body_wall, add_deformation, plan_torso

__all__ = ['SyntheticSubject', 'PhantomModel']


@dataclass
class SyntheticSubject:
    """One synthetic subject.

    Attributes:
        labels: ``int16`` label map (``(z, y, x)``) with its geometry (LPS mm).
        label_names: ``{label id: structure name}`` (the full table, the same for every
            subject, whether or not a structure is inside the field of view).
        landmarks: named world points (LPS mm), :data:`~.anatomy.LANDMARK_NAMES` in that
            order; ``extra['in_fov']`` says which lie inside the label map's grid.
        lesions: ``[(centre_xyz world mm, radius_mm), ...]``.
        meta: seed, render seed, field of view, body measures, lesion organs, ...
        model: the analytic phantom (evaluate labels anywhere with :meth:`label_at`).
    """

    labels: MedicalImage
    label_names: Dict[int, str]
    landmarks: PointSet
    lesions: List[Tuple[np.ndarray, float]]
    meta: Dict[str, Any] = field(default_factory=dict)
    model: Optional['PhantomModel'] = field(default=None, repr=False)
    # renderer cache (texture masks of this label map); init=False: dataclasses.replace()
    # starts a fresh one
    _cache: Dict[str, Any] = field(default_factory=dict, init=False, repr=False,
                                   compare=False)

    def label_at(self, points) -> np.ndarray:
        """Label of arbitrary world points ``(N, 3)`` (LPS mm), inside or outside the grid."""
        return self.model.label_at(points)


# ------------------------------------------------------------------------------ the model
class PhantomModel:
    """The analytic anatomy of one subject: painting items, landmarks, lesion organs."""

    def __init__(self, rng: np.random.Generator, deform: bool = True):
        self.items: List[Tuple[int, Shape, Optional[np.ndarray]]] = []
        self.landmarks_t: Dict[str, np.ndarray] = {}
        self.organs: Dict[str, Shape] = {}
        self.info: Dict[str, float] = {}
        self._build(rng, deform)

    # -------------------------------------------------------------------------- painting
    def add(self, name: str, shape: Shape, allow: Optional[np.ndarray] = None):
        """Append a painting item: ``shape`` painted as structure ``name`` where the label
        already there is allowed (``allow[label]``; ``None``: everywhere)."""
        self.items.append((label_id(name), shape, allow))

    def paint(self, canvas, extra_items=(), workers: int = 2):
        """Paint every item in order. On a grid, shapes are evaluated in ``workers`` threads
        (numpy releases the GIL) and painted in order as their results come in."""
        items = list(self.items) + list(extra_items)
        # the regions of all shapes' boxes in one vectorised call
        boxes = [shape.boxes() for _, shape, _ in items]
        flat = canvas.regions([b for bs in boxes for b in bs])
        regions, k = [], 0
        for bs in boxes:
            regions.append(flat[k:k + len(bs)])
            k += len(bs)
        jobs = list(zip(items, regions))
        if workers > 1 and isinstance(canvas, GridCanvas):
            from concurrent.futures import ThreadPoolExecutor
            with ThreadPoolExecutor(max_workers=workers) as pool:
                results = pool.map(lambda job: job[0][1].evaluate(canvas, job[1]), jobs)
                for (label, shape, allow), parts in zip(items, results):
                    shape.apply(canvas, parts, label, allow)
        else:
            for (label, shape, allow), regs in jobs:
                shape.apply(canvas, shape.evaluate(canvas, regs), label, allow)
        return canvas

    def label_at(self, points, extra_items=()) -> np.ndarray:
        """Labels of world points ``(N, 3)`` (LPS mm), painting ``extra_items`` last."""
        canvas = PointCanvas(self.deformation, points)
        return self.paint(canvas, extra_items).labels

    # -------------------------------------------------------------------------- anatomy
    def _build(self, rng: np.random.Generator, deform: bool):
        """The recipe: region builders in a fixed order (later items paint over earlier
        ones where allowed; the order of the random draws fixes the subject of a seed)."""
        plan = plan_torso(self, rng)
        add_deformation(self, rng, plan, deform)
        add_body_wall(self, rng, plan)
        add_spine(self, rng, plan)
        add_pelvis(self, rng, plan)
        add_chest_wall(self, rng, plan)
        add_psoas(self, rng, plan)
        add_diaphragm(self, rng, plan)
        add_lungs(self, rng, plan)
        add_upper_abdomen(self, rng, plan)
        add_kidneys(self, rng, plan)
        add_lower_abdomen(self, rng, plan)
        add_heart(self, rng, plan)
        add_mediastinum(self, rng, plan)

        self.info.update(z_diaphragm_right=plan.z_dR, z_diaphragm_left=plan.z_dL,
                         z_carina=plan.z_car)
        missing = set(LANDMARK_NAMES) - set(self.landmarks_t)
        assert not missing, f'landmarks without a definition: {sorted(missing)}'

    # -------------------------------------------------------------------------- landmarks
    def landmarks_world(self) -> np.ndarray:
        """World positions (LPS mm) of :data:`LANDMARK_NAMES`, in that order."""
        tp = np.stack([self.landmarks_t[n] for n in LANDMARK_NAMES])
        return self.deformation.to_world(tp)

    def body_z_range_world(self) -> Tuple[float, float]:
        """World z of the body's bottom (pelvic floor) and top (neck cut) on the midline."""
        pts = np.array([[0.0, -100.0, 0.0], [0.0, -100.0, self.z_top]])
        w = self.deformation.to_world(pts)
        return float(w[0, 2]), float(w[1, 2])

