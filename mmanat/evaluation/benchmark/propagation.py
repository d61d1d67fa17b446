"""Benchmark ``propagation``: organ label maps carried from one subject to another, Dice per
organ and time, embedding propagation against SimpleITK registration.

Cases (:func:`propagation_cases`): pairs of synthetic subjects (template ``seed + 2k``, target
``seed + 2k + 1``) rendered as CT over the same anatomical range (chest and upper abdomen,
like :func:`mmanat.evaluation.cases.cross_subject_cases`), with their exact organ label
maps; optionally the two real sample CTs with lung masks found by rule
(:func:`real_lung_case`; right and left lung of the ``lungs`` mask of
:func:`mmanat.evaluation.landmarks.detect.detect_chest_landmarks`, split at the carina).

Methods, all resampling the template labels onto the target grid by nearest neighbour
through a target -> template map:

* ``embedding (<model>)``: :func:`mmanat.apis.propagation.propagate_labels` (grid matches,
  robust affine + smoothing thin-plate spline); its time includes embedding both images;
* ``embedding affine (<model>)``: the same with ``regularization='affine'``;
* ``sitk_affine`` / ``sitk_bspline``: SimpleITK Mattes-MI registration of the template
  (moving) to the target (fixed) (:func:`mmanat.registration.register_affine` /
  :func:`~mmanat.registration.register_bspline`);
* ``identity``: the labels at the same world position.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from ...structures.image import MedicalImage
from .table import BenchmarkTable

__all__ = ['PropagationCase', 'ORGANS', 'propagation_cases', 'real_lung_case',
           'propagation_methods', 'run_propagation_benchmark']

#: organs scored on the synthetic subjects (names of mmanat.datasets.synthetic.LABEL_NAMES)
ORGANS = ('lung_left', 'lung_right', 'heart', 'aorta', 'liver', 'spleen', 'stomach',
          'kidney_left', 'kidney_right')


@dataclass
class PropagationCase:
    """A template image with its label map and a target image with its reference labels.

    Attributes:
        name: case name.
        template, target: the images.
        template_labels, target_labels: their label maps (on the images' grids).
        organs: ``{label id: name}`` of the labels scored.
        meta: seeds, spacing, source.
    """

    name: str
    template: MedicalImage
    template_labels: MedicalImage
    target: MedicalImage
    target_labels: MedicalImage
    organs: Dict[int, str]
    meta: Dict = field(default_factory=dict)


def propagation_cases(n_pairs: int = 1, spacing: float = 4.0, seed: int = 0,
                      z_range=(250.0, 570.0), organs: Sequence[str] = ORGANS,
                      min_volume_ml: float = 5.0) -> List[PropagationCase]:
    """``n_pairs`` synthetic CT pairs with organ labels (see the module docstring).

    Args:
        n_pairs: number of subject pairs.
        spacing: voxel size (mm).
        seed: base seed.
        z_range: imaged range (mm above the pelvic floor of the phantom).
        organs: names of the scored organs; each case keeps those with at least
            ``min_volume_ml`` in both label maps.
        min_volume_ml: smallest organ volume scored.
    """
    from ...datasets.synthetic import LABEL_NAMES, generate_subject
    from ...datasets.synthetic_landmark_pair_dataset import render_subject
    ids = {name: k for k, name in LABEL_NAMES.items()}
    cases = []
    for k in range(int(n_pairs)):
        sa, sb = seed + 2 * k, seed + 2 * k + 1
        subj = [generate_subject(s, spacing=spacing, z_range=z_range, lesions=0)
                for s in (sa, sb)]
        imgs = [render_subject(s, 'CT', np.random.default_rng([seed, s_id, 3]))
                for s, s_id in zip(subj, (sa, sb))]
        vox_ml = float(np.prod(subj[0].labels.spacing)) / 1000.0
        keep = {}
        for name in organs:
            lab = ids[name]
            if all((s.labels.array == lab).sum() * vox_ml >= min_volume_ml for s in subj):
                keep[lab] = name
        cases.append(PropagationCase(f'CT/{k}', imgs[0], subj[0].labels, imgs[1],
                                     subj[1].labels, keep,
                                     dict(template_seed=sa, target_seed=sb, spacing=spacing)))
    return cases


def real_lung_case(lung1: str, lung2: str) -> PropagationCase:
    """The two real sample CTs (paths) with rule-based right (1) / left (2) lung masks."""
    from ...fileio import read_volume
    from ..landmarks.detect import detect_chest_landmarks
    images, labels = [], []
    for path in (lung1, lung2):
        img = read_volume(path, modality='CT')
        pts, masks = detect_chest_landmarks(img, return_masks=True)
        lungs = masks['lungs']
        carina_x = img.world_to_array_index(pts['carina'][None])[0][2]
        left = (np.arange(lungs.shape[2]) >= carina_x)[None, None, :]
        arr = np.zeros(lungs.shape, np.int16)
        arr[lungs & ~left] = 1  # patient right: low x (LPS)
        arr[lungs & left] = 2
        images.append(img)
        labels.append(img.with_array(arr, modality=None))
    return PropagationCase('lung1->lung2', images[0], labels[0], images[1], labels[1],
                           {1: 'lung_right', 2: 'lung_left'}, dict(source='real samples'))


class _Registration:
    """SimpleITK registration as a label propagation method (labels resampled through it)."""

    def __init__(self, name: str, func: Callable, preset: str):
        self.name, self.func, self.preset = name, func, preset

    def __call__(self, case: PropagationCase) -> MedicalImage:
        from ...structures.resample import resample_to_reference
        # fixed = target, moving = template: the transform maps target points to template
        # points, the direction of label resampling
        res = self.func(case.target, case.template, self.preset)
        return resample_to_reference(case.template_labels, case.target, 'nearest',
                                     res.transform, default_value=0)


class _Identity:
    name = 'identity'

    def __call__(self, case: PropagationCase) -> MedicalImage:
        from ...structures.resample import resample_to_reference
        return resample_to_reference(case.template_labels, case.target, 'nearest',
                                     default_value=0)


class _Embedding:
    """:func:`mmanat.apis.propagation.propagate_labels` with a model (embeds both images)."""

    def __init__(self, model, name: str, regularization: str = 'tps', **kwargs):
        self.model, self.name = model, name
        self.kwargs = dict(regularization=regularization, **kwargs)

    def __call__(self, case: PropagationCase) -> MedicalImage:
        from ...apis import embed
        from ...apis.propagation import propagate_labels
        tpl, tgt = embed(self.model, case.template), embed(self.model, case.target)
        out, _ = propagate_labels(tpl, case.template_labels, tgt, case.target, **self.kwargs)
        return out


def propagation_methods(models: Sequence = (), model_names: Sequence[str] = (),
                        baselines: Sequence[str] = ('identity', 'sitk_affine',
                                                    'sitk_bspline'),
                        preset: str = 'quick', grid_spacing_mm: float = 16.0) -> List:
    """The methods of the benchmark: per model the embedding propagation with TPS and with
    the affine only, then the baselines named (``identity``, ``sitk_affine``,
    ``sitk_bspline``)."""
    from ...registration.sitk_registration import register_affine, register_bspline
    out: List = []
    for model, name in zip(models, model_names):
        out.append(_Embedding(model, f'embedding ({name})', 'tps',
                              grid_spacing_mm=grid_spacing_mm))
        out.append(_Embedding(model, f'embedding affine ({name})', 'affine',
                              grid_spacing_mm=grid_spacing_mm))
    table = {'identity': _Identity(),
             'sitk_affine': _Registration('sitk_affine', register_affine, preset),
             'sitk_bspline': _Registration('sitk_bspline', register_bspline, preset)}
    out += [table[b] for b in baselines if b in table]
    return out


def run_propagation_benchmark(cases: Sequence[PropagationCase], methods: Sequence,
                              name: str = 'propagation',
                              title: str = 'Label propagation across subjects (Dice)',
                              log: Callable = print) -> BenchmarkTable:
    """Every method on every case; one row per method: mean Dice per organ over the cases,
    the mean over organs and the time per case (s).

    A method that raises gets NaN Dice on that case and a note.
    """
    from ...apis.propagation import dice_per_label
    from ...structures.resample import resample_to_reference
    organ_names: List[str] = []
    for c in cases:
        organ_names += [n for n in c.organs.values() if n not in organ_names]
    table = BenchmarkTable(name, title, ['method'] + organ_names + ['mean Dice',
                                                                    'time/case (s)'])
    per_case = []
    for method in methods:
        scores: Dict[str, List[float]] = {n: [] for n in organ_names}
        times = []
        for case in cases:
            log(f'[{name}] {method.name} on {case.name}')
            t0 = time.perf_counter()
            err = None
            try:
                pred = method(case)
            except Exception as exc:  # noqa: BLE001 - a failing method is a table entry
                pred, err = None, f'{type(exc).__name__}: {exc}'
                table.notes.append(f'{method.name} failed on {case.name}: {err}')
            secs = time.perf_counter() - t0
            times.append(secs)
            truth = case.target_labels
            if not truth.same_geometry(case.target):
                truth = resample_to_reference(truth, case.target, 'nearest', default_value=0)
            dice = (dice_per_label(pred.array, truth.array, list(case.organs))
                    if pred is not None else {k: float('nan') for k in case.organs})
            for k, organ in case.organs.items():
                scores[organ].append(dice[k])
            per_case.append(dict(method=method.name, case=case.name, seconds=secs, error=err,
                                 dice={case.organs[k]: v for k, v in dice.items()}))
        row = [float(np.mean(scores[n])) if scores[n] else float('nan') for n in organ_names]
        table.rows.append([method.name] + row + [float(np.nanmean(row)) if row else
                                                 float('nan'), float(np.mean(times))])
    table.details['cases'] = per_case
    table.details['case_info'] = [dict(name=c.name, template_shape=list(c.template.shape),
                                       target_shape=list(c.target.shape),
                                       organs=c.organs, meta=c.meta) for c in cases]
    return table


def default_model(device: Optional[str] = None):
    """The shipped SAM model (``checkpoints/sam_default.pth``) and its table name."""
    from ...apis import init_model
    from ...utils.model_zoo import default_checkpoint
    path = default_checkpoint('sam')
    return init_model(None, path, device=device, expect='3d-embedding'), 'shipped SAM'
