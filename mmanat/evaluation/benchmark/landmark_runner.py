"""Landmark benchmarks: every method on every case, errors in mm against exact ground truth.

Benchmarks (see :mod:`mmanat.evaluation.cases`):

* ``deformation`` - real CTs warped by known random deformations;
* ``cross_subject`` - named landmarks across synthetic subjects (CT->CT, MR->MR, CT->MR);
* ``real_landmarks`` - rule-based anatomical landmarks across the two real CTs, both directions;
* ``lesion_tracking`` - synthetic longitudinal lesion pairs (:mod:`.lesion_runner`);
* ``speed`` - embedding time / peak memory vs volume size and matching time vs number of
  points (:mod:`.speed`; needs a model);
* ``xray`` - chest radiographs (2D): named landmarks across synthetic subjects and the real
  sample radiograph against known random deformations of itself.

The runner is the same for volumes and 2D images (points ``(N, 2)`` world mm); a method that
runs on one kind only (``image_ndim``, see :func:`.methods.method_unavailable`) gets rows that
say so.
"""
from __future__ import annotations

from typing import Callable, Optional, Sequence

import numpy as np

from ..cases import LandmarkCase
from ..metrics.landmark_metric import summarize_errors
from .methods import method_unavailable, timed_call
from .table import BenchmarkTable

__all__ = ['BENCHMARKS', 'run_landmark_benchmark']

BENCHMARKS = ('deformation', 'cross_subject', 'real_landmarks', 'lesion_tracking', 'speed',
              'xray')


def run_landmark_benchmark(name: str, title: str, cases: Sequence[LandmarkCase],
                           methods: Sequence[Callable], group: Optional[Callable] = None,
                           log: Callable = print) -> BenchmarkTable:
    """Every method on every case; one row per method (and per ``group(case)`` if given).

    Columns: MRE (mm), median, 90th percentile, within 5 / 10 mm, number of points, time per
    case (s). A method whose ``unavailable`` attribute holds a message (e.g. ANTs without
    antspyx), or which runs on other images than the cases' (``image_ndim``: a 3D model on
    radiographs), is not run: its rows carry the message instead of numbers.
    """
    table = BenchmarkTable(name, title, ['method'] + (['group'] if group else []) + [
        'MRE (mm)', 'median (mm)', 'p90 (mm)', 'within 5 mm', 'within 10 mm', 'points',
        'time/case (s)'])
    per_case = []
    ndims = sorted({c.ndim for c in cases})
    dim = ndims[0] if len(ndims) == 1 else 3
    for method in methods:
        unavailable = method_unavailable(method, ndims)
        if unavailable:  # e.g. an optional dependency is missing: a row that says so
            log(f'[{name}] {method.name}: {unavailable}')
            for g in (sorted({group(c) for c in cases}, key=str) if group else [None]):
                table.add_unavailable_row([method.name] + ([g] if group else []), unavailable)
            continue
        disp, times, groups = [], [], []
        for case in cases:
            log(f'[{name}] {method.name} on {case.name} ({len(case.template_points)} points)')
            pred, secs, err = timed_call(method, case.template, case.template_points,
                                          case.target, log)
            d = pred - case.target_points
            disp.append(d)
            times.append(secs)
            groups.append(group(case) if group else None)
            s = summarize_errors(d)
            per_case.append(dict(method=method.name, case=case.name, seconds=secs, error=err,
                                 mre=s['mre'], median=s['median'], n=s['n'],
                                 within_10mm=s['within_10mm']))
            if err:
                table.notes.append(f'{method.name} failed on {case.name}: {err}')
        keys = sorted(set(groups), key=str) if group else [None]
        for g in keys:
            sel = [i for i, gi in enumerate(groups) if gi == g]
            s = summarize_errors(np.concatenate([disp[i] for i in sel]) if sel
                                 else np.zeros((0, dim)))
            row = [method.name] + ([g] if group else []) + [
                s['mre'], s['median'], s['p90'], s['within_5mm'], s['within_10mm'], s['n'],
                float(np.mean([times[i] for i in sel])) if sel else float('nan')]
            table.rows.append(row)
    table.details['cases'] = per_case
    table.details['case_info'] = [dict(name=c.name, points=len(c.template_points),
                                       template_shape=list(c.template.shape),
                                       target_shape=list(c.target.shape),
                                       template_spacing=c.template.spacing.tolist(),
                                       target_spacing=c.target.spacing.tolist(),
                                       meta=c.meta) for c in cases]
    return table
