"""Benchmark ``xray``: one-shot landmark detection on chest radiographs (2D images).

1. :func:`xray_cross_subject_cases` - the named landmarks of one annotated synthetic
   radiograph (the template) found in the radiographs of other synthetic subjects; the
   projected landmarks of the generator are the ground truth.
2. :func:`xray_deformation_cases` - a real radiograph warped by known random 2D deformations
   (affine + smooth displacement, field-of-view cut, exposure change; :mod:`.deformation`);
   points sampled inside the body.

Points are 2D world mm ``(x, y)`` of the radiographs (for the synthetic ones world ``x`` and
``z``: see :func:`~mmanat.datasets.synthetic.render_xray`).
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ...structures.image import MedicalImage
from ...structures.points import PointSet
from ...utils.exceptions import InvalidInputError
from .deformation_cases import deform_case
from .landmark_case import LandmarkCase

__all__ = ['XRAY_Z_RANGE', 'synthetic_radiograph', 'xray_cross_subject_cases',
           'radiograph_body_mask', 'xray_deformation_cases']

#: anatomical range (mm above the pelvic floor) of the synthetic chest radiographs: thorax and
#: upper abdomen, as in :class:`~mmanat.datasets.SyntheticRadiographDataset`
XRAY_Z_RANGE = (300.0, 700.0)


def synthetic_radiograph(seed: int, spacing: float = 2.0,
                         z_range: Sequence[float] = XRAY_Z_RANGE
                         ) -> Tuple[MedicalImage, PointSet]:
    """The chest radiograph of synthetic subject ``seed`` and its landmarks.

    The subject (:func:`~mmanat.datasets.synthetic.generate_subject`, voxel ``spacing`` mm,
    imaged over ``z_range``) is rendered as CT without the table and projected
    (:func:`~mmanat.datasets.synthetic.render_xray`: parallel beam, pixels of ``spacing``
    mm). The landmarks carry ``extra['inside']`` (1 / 0, as in the files of
    ``mmanat-make-synthetic``; :func:`~mmanat.datasets.synthetic.landmarks_inside`).

    Returns:
        ``(radiograph, landmarks)``: a 2D ``MedicalImage`` (modality ``'XR'``) and a
        ``PointSet`` of 2D world points (mm).
    """
    from ...datasets.synthetic import (STRUCTURE_BY_NAME, generate_subject, landmarks_inside,
                                       render_ct, render_xray)
    subj = generate_subject(int(seed), spacing=float(spacing),
                            z_range=tuple(float(z) for z in z_range), threads=1)
    table = subj.labels.array == STRUCTURE_BY_NAME['table'].label
    xr, pts = render_xray(render_ct(subj), subj.landmarks, exclude=table)
    pts.extra['inside'] = landmarks_inside(xr, pts).astype(int).tolist()
    xr.meta['seed'] = int(seed)
    return xr, pts


def _usable(image: MedicalImage, points: PointSet, margin_mm: float) -> np.ndarray:
    """Landmarks flagged inside and at least ``margin_mm`` from the image borders."""
    idx = image.world_to_index(points.xyz)
    m = float(margin_mm) / image.spacing
    far = np.all((idx >= m) & (idx <= image.size - 1 - m), axis=1)
    return far & (np.asarray(points.extra['inside']) == 1)


def xray_cross_subject_cases(n_templates: int = 1, n_targets: int = 4, spacing: float = 2.0,
                             seed: int = 0, margin_mm: float = 4.0,
                             z_range: Sequence[float] = XRAY_Z_RANGE) -> List[LandmarkCase]:
    """One-shot landmark detection across synthetic chest radiographs.

    Templates are subjects ``seed + k`` (``k < n_templates``), targets subjects
    ``seed + n_templates + j`` (``j < n_targets``); every template is paired with every target
    (:func:`synthetic_radiograph` each, pixels of ``spacing`` mm). Points are the landmarks
    inside both radiographs, at least ``margin_mm`` from the borders.

    Returns:
        ``n_templates * n_targets`` cases named ``'s<template>->s<target>'``.

    Raises:
        InvalidInputError: ``n_templates`` or ``n_targets`` below 1.
    """
    if n_templates < 1 or n_targets < 1:
        raise InvalidInputError(f'xray_cross_subject_cases: need at least one template and one '
                                f'target, got {n_templates} and {n_targets}.')
    cache: Dict[int, Tuple[MedicalImage, PointSet]] = {}

    def subject(s):
        if s not in cache:
            cache[s] = synthetic_radiograph(s, spacing, z_range)
        return cache[s]

    cases = []
    for t in range(seed, seed + n_templates):
        t_img, t_pts = subject(t)
        t_ok = _usable(t_img, t_pts, margin_mm)
        for g in range(seed + n_templates, seed + n_templates + n_targets):
            g_img, g_pts = subject(g)
            g_ok = _usable(g_img, g_pts, margin_mm)
            g_index = {n: i for i, n in enumerate(g_pts.names)}
            names = [n for i, n in enumerate(t_pts.names)
                     if t_ok[i] and n in g_index and g_ok[g_index[n]]]
            ti = [t_pts.names.index(n) for n in names]
            gi = [g_index[n] for n in names]
            cases.append(LandmarkCase(
                f's{t}->s{g}', t_img, g_img, t_pts.xyz[ti], g_pts.xyz[gi], names=names,
                meta=dict(kind='xray_cross_subject', template_seed=t, target_seed=g,
                          spacing=float(spacing), z_range=[float(z) for z in z_range])))
    return cases


def radiograph_body_mask(image: MedicalImage) -> np.ndarray:
    """The body of a radiograph: pixels above Otsu's threshold, the largest connected
    component, holes (the darker lungs) filled (:func:`mmanat.structures.body.body_mask`
    with ``threshold`` only, no morphology)."""
    from ...structures.body import BENCHMARK_CASE_MASK, body_mask
    if image.ndim != 2:
        raise InvalidInputError(f'{image.path or "<in-memory image>"}: radiograph_body_mask '
                                f'needs a 2D image, got shape {image.shape}.')
    return body_mask(image, **dict(BENCHMARK_CASE_MASK, modality='XR'))


def xray_deformation_cases(image: MedicalImage, n_cases: int = 2, n_points: int = 30,
                           spacing: Optional[float] = 2.0, seed: int = 0, name: str = 'xray',
                           erode_mm: float = 10.0, **kwargs) -> List[LandmarkCase]:
    """A real radiograph against known random deformations of itself.

    The radiograph is resampled to ``spacing`` mm (``None``: kept) and warped ``n_cases``
    times (:func:`~mmanat.evaluation.cases.deform_case` in 2D: rotation, scaling, translation,
    a smooth displacement field, a field-of-view cut, another exposure; ``kwargs`` go there).
    Query points are sampled inside the body (:func:`radiograph_body_mask`), ``erode_mm``
    from its outline.

    Returns:
        ``n_cases`` cases named ``'<name>/def<j>'``.

    Raises:
        InvalidInputError: ``image`` is not 2D.
    """
    from ...structures.resample import resample_to_spacing
    if image.ndim != 2:
        raise InvalidInputError(f'{image.path or "<in-memory image>"}: xray_deformation_cases '
                                f'needs a 2D radiograph, got shape {image.shape}.')
    tmpl = image.with_array(image.array.astype(np.float32))
    if spacing is not None:
        tmpl = resample_to_spacing(tmpl, spacing)
    body = radiograph_body_mask(tmpl)
    cases = []
    for j in range(n_cases):
        rng = np.random.default_rng([seed, j])
        case, _ = deform_case(tmpl, rng, n_points=n_points, name=f'{name}/def{j}', body=body,
                              erode_mm=erode_mm, **kwargs)
        case.meta.update(kind='xray_deformation', seed=[seed, j], source=image.path,
                         spacing=None if spacing is None else float(spacing))
        cases.append(case)
    return cases
