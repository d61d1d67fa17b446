"""Benchmark 3: synthetic longitudinal lesion pairs in the Deep Lesion Tracker (DLT) layout.

A synthetic subject with lesions is the baseline (template); its follow-up has every lesion
grown or shrunk and is deformed like the cases of :mod:`.deformation_cases`. One DLT record
per lesion holds its exact centre, box and RECIST-like diameters in both images.
"""
from __future__ import annotations

import os
import os.path as osp
from dataclasses import dataclass, replace
from typing import List, Optional

import numpy as np

from ...datasets.synthetic_landmark_pair_dataset import render_subject
from ...structures.image import MedicalImage
from .deformation import RandomDeformation
from .deformation_cases import deform_case

__all__ = ['LesionCase', 'lesion_box_voxels', 'longitudinal_lesion_cases']


@dataclass
class LesionCase:
    """A longitudinal pair: ``template`` (baseline) and ``target`` (deformed follow-up) with
    DLT records (one per lesion) whose voxel values refer to these two images."""

    name: str
    template: MedicalImage
    target: MedicalImage
    records: list
    deformation: RandomDeformation = None


def _regrow_lesions(labels: np.ndarray, image: MedicalImage, lesions, lesion_label: int,
                    factors: np.ndarray) -> np.ndarray:
    """Label map with every lesion removed (filled by the nearest other label) and redrawn
    as a ball of ``radius * factor`` (only over non-background labels)."""
    from scipy import ndimage
    out = labels.copy()
    is_lesion = out == lesion_label
    if is_lesion.any():
        _, nearest = ndimage.distance_transform_edt(is_lesion, return_indices=True)
        out[is_lesion] = out[tuple(ix[is_lesion] for ix in nearest)]
    for (centre, radius), f in zip(lesions, factors):
        r = radius * f
        idx = image.world_to_array_index(np.asarray(centre, dtype=np.float64))
        half = r / image.spacing[::-1] + 1
        lo = np.maximum(np.floor(idx - half).astype(int), 0)
        hi = np.minimum(np.ceil(idx + half).astype(int) + 1, out.shape)
        if np.any(hi <= lo):
            continue
        sl = tuple(slice(a, b) for a, b in zip(lo, hi))
        pts = np.moveaxis(np.indices(tuple(hi - lo)), 0, -1) + lo  # (z, y, x) indices
        world = image.array_index_to_world(pts)
        ball = np.linalg.norm(world - np.asarray(centre), axis=-1) <= r
        region = out[sl]
        region[ball & (region != 0)] = lesion_label
    return out


def lesion_box_voxels(image: MedicalImage, centre_mm, radius_mm: float,
                      deformation: Optional[RandomDeformation] = None):
    """Box ``[x, y, z, w, h, d]`` (voxels of ``image``), centre (voxels) and RECIST-like
    diameters ``[long, short]`` (pixels) of a ball of ``radius_mm`` at ``centre_mm`` in the
    template; with ``deformation``, of its image in the target (the ball's 26 axis and
    diagonal extreme points mapped through the exact inverse)."""
    dirs = np.array(np.meshgrid([-1, 0, 1], [-1, 0, 1], [-1, 0, 1], indexing='ij'))
    dirs = dirs.reshape(3, -1).T
    dirs = dirs[np.any(dirs != 0, axis=1)].astype(np.float64)
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    centre = np.asarray(centre_mm, dtype=np.float64).reshape(1, 3)
    pts = np.concatenate([centre, centre + radius_mm * dirs])
    if deformation is not None:
        pts = deformation.template_to_target(pts)
    vox = image.world_to_index(pts)
    lo, hi = vox.min(0), vox.max(0)
    box = np.concatenate([lo, hi - lo])
    size_mm = (hi - lo) * image.spacing
    long_mm, short_mm = max(size_mm[0], size_mm[1]), min(size_mm[0], size_mm[1])
    diam = np.array([long_mm, short_mm]) / image.spacing[0]
    return box, vox[0], diam


def longitudinal_lesion_cases(n_cases: int = 2, spacing: float = 2.0, seed: int = 0,
                              out_dir: Optional[str] = None, growth=(0.6, 1.5),
                              n_lesions: int = 3, **deform_kwargs) -> List[LesionCase]:
    """Benchmark 3: synthetic longitudinal CT pairs with grown/shrunk lesions.

    Subject ``seed + k`` (with ``n_lesions`` lesions) is rendered as the baseline (template);
    its follow-up has every lesion radius multiplied by ``U(growth)``, is rendered with the
    same tissue values and then deformed (:func:`deform_case`: random affine + smooth warp,
    FOV cut, intensity change). One DLT record per lesion whose centre lies inside both
    images; subjects without such a lesion are skipped (up to ``5 * n_cases`` subjects are
    tried). With ``out_dir``, the images are written there as ``case{k}_baseline.nii.gz`` /
    ``case{k}_followup.nii.gz`` together with ``test.json`` (DLT layout), so that
    ``tools/eval_lesion_tracking.py`` can evaluate predictions.
    """
    from ...datasets.synthetic import generate_subject
    from ...datasets.synthetic.anatomy import STRUCTURE_BY_NAME
    from ..dlt_format import LesionPair, write_dlt_json
    lesion_label = STRUCTURE_BY_NAME['lesion'].label
    cases, all_records = [], []
    for k in range(5 * n_cases):
        if len(cases) >= n_cases:
            break
        rng = np.random.default_rng([seed, k, 3])
        subj = generate_subject(seed + k, spacing=spacing, lesions=n_lesions)
        lesions = list(subj.lesions)
        if not lesions:
            continue
        render_seed = int(rng.integers(1 << 31))
        contrast = bool(rng.uniform() < 0.5)
        base = render_subject(subj, 'CT', np.random.default_rng(render_seed), contrast=contrast)
        factors = rng.uniform(growth[0], growth[1], size=len(lesions))
        labels2 = _regrow_lesions(subj.labels.array, subj.labels, lesions, lesion_label,
                                  factors)
        follow_subj = replace(subj, labels=subj.labels.with_array(labels2),
                              lesions=[(c, r * f) for (c, r), f in zip(lesions, factors)])
        follow = render_subject(follow_subj, 'CT', np.random.default_rng(render_seed),
                         contrast=contrast)
        case, deformation = deform_case(follow, rng, n_points=0, name=f'case{k}',
                                        **deform_kwargs)
        target = case.target
        src_name, tgt_name = f'case{k}_baseline.nii.gz', f'case{k}_followup.nii.gz'
        records = []
        for j, ((centre, radius), f) in enumerate(zip(lesions, factors)):
            if not base.contains_world(np.asarray(centre)[None], margin=-1.0)[0]:
                continue
            sbox, scen, sdiam = lesion_box_voxels(base, centre, radius)
            tbox, tcen, tdiam = lesion_box_voxels(target, centre, radius * f, deformation)
            if not (np.all(tcen >= 1) and np.all(tcen <= target.size - 2)):
                continue
            records.append(LesionPair(
                key=f'{k:03d}{j:02d}', source=src_name, target=tgt_name,
                source_center=scen, target_center=tcen, source_spacing=base.spacing,
                target_spacing=target.spacing, source_box=sbox, target_box=tbox,
                source_diameter=sdiam, target_diameter=tdiam,
                extra={'growth factor': float(f), 'subject seed': int(seed + k)}))
        if not records:
            continue
        cases.append(LesionCase(f'case{k}', base, target, records, deformation))
        all_records += records
    if out_dir is not None and cases:
        from ...fileio import write_image
        os.makedirs(out_dir, exist_ok=True)
        for case in cases:
            write_image(case.template, osp.join(out_dir, case.records[0].source))
            write_image(case.target, osp.join(out_dir, case.records[0].target))
        write_dlt_json(all_records, osp.join(out_dir, 'test.json'))
    return cases
