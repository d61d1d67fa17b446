"""The lesion-tracking benchmark: lesion centres mapped into follow-ups, evaluated through
DLT-layout files exactly as ``tools/eval_lesion_tracking.py`` evaluates them."""
from __future__ import annotations

import os.path as osp
from typing import Callable, Sequence

import numpy as np

from ..cases import LesionCase
from .methods import method_unavailable, timed_call
from .table import BenchmarkTable

__all__ = ['run_lesion_benchmark']


def run_lesion_benchmark(cases: Sequence[LesionCase], methods: Sequence[Callable],
                         work_dir: str, log: Callable = print) -> BenchmarkTable:
    """Lesion tracking: for each method, map every baseline lesion centre into the follow-up,
    write the predictions as a file, and evaluate it against the DLT-layout ``test.json``
    in ``work_dir`` (written by :func:`~mmanat.evaluation.cases.longitudinal_lesion_cases`)
    exactly as ``tools/eval_lesion_tracking.py`` does. A method whose ``unavailable`` attribute
    holds a message, or that runs on 2D images only (``image_ndim``), is not run: its row
    carries the message instead of numbers."""
    from ..dlt_format import (attach_predictions, evaluate_dlt, read_dlt_json,
                             read_predictions, write_predictions)
    ann = osp.join(work_dir, 'test.json')
    table = BenchmarkTable('lesion_tracking', 'Lesion tracking, synthetic longitudinal pairs '
                           '(DLT layout)', ['method', 'CPM@Radius', 'CPM@10mm', 'MED (mm)',
                                            'MED std', 'MED x', 'MED y', 'MED z', 'pairs',
                                            'time/case (s)'])
    details = {}
    for method in methods:
        unavailable = method_unavailable(method, sorted({c.template.ndim for c in cases}))
        if unavailable:  # e.g. an optional dependency is missing: a row that says so
            log(f'[lesion_tracking] {method.name}: {unavailable}')
            table.add_unavailable_row([method.name], unavailable)
            continue
        preds, times = {}, []
        for case in cases:
            src = np.stack([case.template.index_to_world(r.source_center)
                            for r in case.records])
            log(f'[lesion_tracking] {method.name} on {case.name} ({len(src)} lesions)')
            pred, secs, err = timed_call(method, case.template, src, case.target, log)
            times.append(secs)
            if err:
                table.notes.append(f'{method.name} failed on {case.name}: {err}')
                continue
            vox = case.target.world_to_index(pred)
            for rec, v in zip(case.records, vox):
                preds[rec.key] = v
        pred_path = write_predictions(preds, osp.join(work_dir, f'pred_{method.name}.json'))
        records = read_dlt_json(ann)
        attach_predictions(records, read_predictions(pred_path), src=pred_path)
        m = evaluate_dlt(records)
        details[method.name] = dict(metrics=m, seconds=times, predictions=pred_path)
        table.rows.append([method.name, m['cpm_radius'], m['cpm_10mm'], m['med'], m['med_std'],
                           m['med_x'], m['med_y'], m['med_z'], m['n'],
                           float(np.mean(times)) if times else float('nan')])
    table.details = dict(methods=details, annotation=ann,
                         cases=[dict(name=c.name, lesions=len(c.records),
                                     template_shape=list(c.template.shape),
                                     target_shape=list(c.target.shape)) for c in cases])
    shown = osp.relpath(ann)
    shown = ann if shown.startswith('..') else shown
    table.notes.append(f'{len(cases)} follow-up pairs; annotation and predictions: {shown} '
                       '(evaluate any prediction file with `python '
                       f'tools/eval_lesion_tracking.py --ann {shown} --pred FILE`)')
    return table
