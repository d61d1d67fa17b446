"""Benchmarks: methods side by side on cases with exact ground truth.

A *method* is any callable ``method(template, points_mm, target) -> (N, 3)`` predicted target
points (world LPS mm) with a ``name`` attribute: the baselines of
:mod:`mmanat.evaluation.baselines`, or :class:`MMAnatMethod` around a trained model. The
wall time of each call (registration, or embedding both images + matching) is the method's
time per case.

Benchmarks (see :mod:`mmanat.evaluation.cases`):

* ``deformation`` - real CTs warped by known random deformations;
* ``cross_subject`` - named landmarks across synthetic subjects (CT->CT, MR->MR, CT->MR);
* ``lesion_tracking`` - synthetic longitudinal lesion pairs, evaluated through the DLT-layout
  files and :func:`~mmanat.evaluation.dlt_format.evaluate_dlt`;
* ``speed`` - embedding time / peak memory vs volume size and matching time vs number of
  points (needs a model).
"""
from __future__ import annotations

import json
import os
import os.path as osp
import platform
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from ..fileio.atomic import atomic_path
from .cases import LandmarkCase, LesionCase
from .metrics.landmark_metric import summarize_errors

BENCHMARKS = ('deformation', 'cross_subject', 'lesion_tracking', 'speed')


# ----------------------------------------------------------------------------- tables
@dataclass
class BenchmarkTable:
    """A result table (markdown-ready) plus per-case details for the JSON output."""

    name: str
    title: str
    columns: List[str]
    rows: List[List] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)
    details: Dict = field(default_factory=dict)

    def to_markdown(self) -> str:
        """The table as GitHub markdown (title, table, notes)."""
        def fmt(v):
            if isinstance(v, float):
                return 'n/a' if not np.isfinite(v) else f'{v:.3f}' if abs(v) < 1 else f'{v:.2f}'
            return str(v)

        lines = [f'### {self.title}', '']
        if self.rows:
            lines.append('| ' + ' | '.join(self.columns) + ' |')
            lines.append('|' + '|'.join('---' for _ in self.columns) + '|')
            lines += ['| ' + ' | '.join(fmt(v) for v in row) + ' |' for row in self.rows]
        else:
            lines.append('(no results)')
        if self.notes:
            lines.append('')
            lines += [f'- {n}' for n in self.notes]
        return '\n'.join(lines) + '\n'

    def to_dict(self) -> Dict:
        return dict(name=self.name, title=self.title, columns=self.columns,
                    rows=[[_plain(v) for v in r] for r in self.rows], notes=self.notes,
                    details=_plain(self.details))


def _plain(v):
    """JSON-safe copy (numpy -> python, NaN -> None)."""
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, np.ndarray):
        return _plain(v.tolist())
    if isinstance(v, (np.floating, float)):
        return float(v) if np.isfinite(v) else None
    if isinstance(v, np.integer):
        return int(v)
    return v


def _timed_call(method, template, points, target, log):
    """Run one method on one case: (predictions, seconds, error message or None)."""
    t0 = time.perf_counter()
    try:
        pred = np.asarray(method(template, points, target), dtype=np.float64).reshape(-1, 3)
        if pred.shape != np.asarray(points).reshape(-1, 3).shape:
            raise RuntimeError(f'returned {pred.shape[0]} points for {len(points)} queries')
        err = None
    except Exception as exc:  # a failing method is a result (misses), not a crash
        pred = np.full((len(points), 3), np.nan)
        err = f'{type(exc).__name__}: {exc}'
        log(f'  [{method.name}] failed: {err}')
        log(traceback.format_exc(limit=3))
    return pred, time.perf_counter() - t0, err


# ----------------------------------------------------------------------------- landmarks
def run_landmark_benchmark(name: str, title: str, cases: Sequence[LandmarkCase],
                           methods: Sequence[Callable], group: Optional[Callable] = None,
                           log: Callable = print) -> BenchmarkTable:
    """Every method on every case; one row per method (and per ``group(case)`` if given).

    Columns: MRE (mm), median, 90th percentile, within 5 / 10 mm, number of points, time per
    case (s).
    """
    table = BenchmarkTable(name, title, ['method'] + (['group'] if group else []) + [
        'MRE (mm)', 'median (mm)', 'p90 (mm)', 'within 5 mm', 'within 10 mm', 'points',
        'time/case (s)'])
    per_case = []
    for method in methods:
        disp, times, groups = [], [], []
        for case in cases:
            log(f'[{name}] {method.name} on {case.name} ({len(case.template_points)} points)')
            pred, secs, err = _timed_call(method, case.template, case.template_points,
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
                                 else np.zeros((0, 3)))
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


# ----------------------------------------------------------------------------- lesions
def run_lesion_benchmark(cases: Sequence[LesionCase], methods: Sequence[Callable],
                         work_dir: str, log: Callable = print) -> BenchmarkTable:
    """Lesion tracking: for each method, map every baseline lesion centre into the follow-up,
    write the predictions as a file, and evaluate it against the DLT-layout ``test.json``
    in ``work_dir`` (written by :func:`~mmanat.evaluation.cases.longitudinal_lesion_cases`)
    exactly as ``tools/eval_lesion_tracking.py`` does."""
    from .dlt_format import (attach_predictions, evaluate_dlt, read_dlt_json,
                             read_predictions, write_predictions)
    ann = osp.join(work_dir, 'test.json')
    table = BenchmarkTable('lesion_tracking', 'Lesion tracking, synthetic longitudinal pairs '
                           '(DLT layout)', ['method', 'CPM@Radius', 'CPM@10mm', 'MED (mm)',
                                            'MED std', 'MED x', 'MED y', 'MED z', 'pairs',
                                            'time/case (s)'])
    details = {}
    for method in methods:
        preds, times = {}, []
        for case in cases:
            src = np.stack([case.template.index_to_world(r.source_center)
                            for r in case.records])
            log(f'[lesion_tracking] {method.name} on {case.name} ({len(src)} lesions)')
            pred, secs, err = _timed_call(method, case.template, src, case.target, log)
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


# ----------------------------------------------------------------------------- mmanat models
class MMAnatMethod:
    """A trained mmanat model as a benchmark method: embed both images
    (:func:`mmanat.apis.embed`), then :func:`mmanat.apis.match` the points (naive argmax, or
    with ``stable_points``). The time per case includes both embeddings."""

    def __init__(self, model, name: str, stable_points: bool = False,
                 match_method: str = 'reference', **match_kwargs):
        self.model, self.name = model, name
        self.stable_points, self.match_method = stable_points, match_method
        self.match_kwargs = match_kwargs

    def __call__(self, template, points_mm, target) -> np.ndarray:
        from ..apis import embed, match
        t_maps, g_maps = embed(self.model, template), embed(self.model, target)
        res = match(t_maps, np.asarray(points_mm, dtype=np.float64), g_maps,
                    method=self.match_method, stable_points=self.stable_points,
                    **self.match_kwargs)
        return np.asarray(res.points, dtype=np.float64)


class EmbeddingRegistrationMethod:
    """Embedding-driven registration (UAE-M, :func:`mmanat.apis.register_with_embeddings`) as
    a benchmark method: the target (moving) is registered to the template (fixed) from
    confident grid matches (rigid, robust affine, optional SimpleITK B-spline), and the
    template points are mapped through the transform. ``last_result`` keeps the latest
    :class:`~mmanat.apis.EmbeddingRegistration`."""

    def __init__(self, model, name: str, deformable: str = 'bspline', **kwargs):
        self.model, self.name, self.deformable = model, name, deformable
        self.kwargs = dict(kwargs)
        self.last_result = None

    def __call__(self, template, points_mm, target) -> np.ndarray:
        from ..apis import register_with_embeddings
        self.last_result = register_with_embeddings(
            self.model, target, template, deformable=self.deformable, warp=False,
            **self.kwargs)
        return self.last_result.map_fixed_to_moving(np.asarray(points_mm, dtype=np.float64))


def mmanat_methods(configs: Sequence[str], checkpoints: Sequence[Optional[str]],
                   names: Optional[Sequence[str]] = None, device: Optional[str] = None,
                   stable: bool = True) -> List[MMAnatMethod]:
    """:class:`MMAnatMethod` s (naive and, with ``stable``, stable-points) for each config /
    checkpoint pair."""
    from ..apis import init_model
    methods = []
    for i, cfg in enumerate(configs):
        ckpt = checkpoints[i] if i < len(checkpoints) else None
        model = init_model(cfg, ckpt, device=device)
        base = names[i] if names and i < len(names) else osp.splitext(osp.basename(cfg))[0]
        methods.append(MMAnatMethod(model, base))
        if stable:
            methods.append(MMAnatMethod(model, base + '+stable', stable_points=True))
    return methods


# ----------------------------------------------------------------------------- speed
def _release_free_memory():
    """Return freed heap pages to the OS (glibc ``malloc_trim``), so that the RSS increase of
    the next measured call counts its own allocations instead of reusing freed pages."""
    import ctypes
    import gc
    gc.collect()
    try:
        ctypes.CDLL('libc.so.6').malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: the measurement is a lower bound
        pass


class _PeakRSS:
    """Peak resident memory increase of this process during a block, sampled every 5 ms from
    ``/proc/self/statm`` (Linux; NaN elsewhere). Freed memory is handed back to the OS first
    (:func:`_release_free_memory`)."""

    def __enter__(self):
        _release_free_memory()
        self.base = self._rss()
        self.peak = self.base
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def _rss(self) -> float:
        try:
            with open('/proc/self/statm') as f:
                return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE') / 2**20
        except (OSError, ValueError):
            return float('nan')

    def _poll(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self._rss())
            time.sleep(0.005)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss())
        self.mb = self.peak - self.base


def run_speed_benchmark(model, sizes: Sequence[int] = (64, 96, 128),
                        n_points: Sequence[int] = (1, 10, 100, 1000), repeats: int = 2,
                        log: Callable = print) -> List[BenchmarkTable]:
    """Embedding time / peak memory vs cubic volume size (2 mm voxels) and matching time vs
    number of points, on the model's device."""
    import torch

    from ..apis import embed, match
    from ..structures.image import MedicalImage
    device = next(model.parameters()).device
    rng = np.random.default_rng(0)
    emb = BenchmarkTable('speed_embedding', f'Embedding time and peak memory vs volume size '
                         f'({device})', ['volume (voxels, 2 mm)', 'megavoxels', 'time (s)',
                                         'peak memory (MB)'])
    maps = {}
    for n in sizes:
        arr = rng.normal(0, 200, (n, n, n)).astype(np.float32) - 300
        img = MedicalImage(arr, spacing=2.0, modality='CT')
        embed(model, img)  # warm-up (allocator, kernels)
        times, peaks = [], []
        for _ in range(repeats):
            if device.type == 'cuda':
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats(device)
                base = torch.cuda.memory_allocated(device)
            with _PeakRSS() as mem:
                t0 = time.perf_counter()
                m = embed(model, img)
                if device.type == 'cuda':
                    torch.cuda.synchronize()
                times.append(time.perf_counter() - t0)
            peaks.append((torch.cuda.max_memory_allocated(device) - base) / 2**20
                         if device.type == 'cuda' else mem.mb)
        best, peak = min(times), float(np.median(peaks))
        maps[n] = (img, m)
        log(f'[speed] embed {n}^3: {best:.3f} s, peak {peak:.0f} MB')
        emb.rows.append([f'{n}x{n}x{n}', n ** 3 / 1e6, best, peak])
    emb.notes.append(f'time: best of {repeats} run(s) after one warm-up; memory: median over '
                     'the runs of the peak RSS increase during the call (CPU; sampled every 5 '
                     'ms after handing freed heap pages back to the OS; includes '
                     'pre-processing and library work buffers, so it need not grow '
                     'monotonically) or of the peak allocated GPU memory')
    mt = BenchmarkTable('speed_matching', f'Matching time vs number of points ({device})',
                        ['points', 'naive (s)', 'naive per point (ms)', 'stable (s)'])
    n_vol = sizes[len(sizes) // 2]
    img, m = maps[n_vol]
    lo, hi = img.world_bounds()

    def timed(fn):
        t0 = time.perf_counter()
        fn()
        if device.type == 'cuda':
            torch.cuda.synchronize()
        return time.perf_counter() - t0

    match(m, (lo + hi)[None] / 2, m)  # warm-up
    for k in n_points:
        pts = rng.uniform(lo + 0.25 * (hi - lo), hi - 0.25 * (hi - lo), size=(k, 3))
        naive = timed(lambda: match(m, pts, m))
        stable = float('nan')
        if k <= 100:
            stable = timed(lambda: match(m, pts, m, stable_points=True))
        log(f'[speed] match {k} points: {naive:.3f} s naive, {stable:.3f} s stable')
        mt.rows.append([k, naive, 1000 * naive / k, stable])
    mt.notes.append(f'target = template = a {n_vol}^3 volume (embedding excluded); stable '
                    'points measured up to 100 points')
    return [emb, mt]


# ----------------------------------------------------------------------------- reports
def machine_info() -> Dict[str, str]:
    """CPU, cores, memory, GPU and library versions of this machine."""
    info = {'platform': platform.platform(), 'python': platform.python_version(),
            'cores': str(os.cpu_count())}
    cpu = platform.processor()
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    cpu = line.split(':', 1)[1].strip()
                    break
        with open('/proc/meminfo') as f:
            kb = int(f.readline().split()[1])
            info['memory'] = f'{kb / 2**20:.1f} GiB'
    except OSError:
        pass
    info['cpu'] = cpu or 'unknown'
    import importlib
    for mod in ('mmanat', 'torch', 'numpy', 'SimpleITK', 'mmengine', 'mmcv', 'scipy'):
        try:
            m = importlib.import_module(mod)
            info[mod] = getattr(m, '__version__', None) or (
                m.Version_VersionString() if mod == 'SimpleITK' else 'unknown')
        except Exception:  # noqa: BLE001 - absence is information
            info[mod] = 'not installed'
    try:
        import torch
        info['gpu'] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'none'
        info['torch threads'] = str(torch.get_num_threads())
    except Exception:  # noqa: BLE001
        info['gpu'] = 'unknown'
    return info


def write_report(tables: Sequence[BenchmarkTable], path: str, command: str,
                 info: Dict[str, str], total_seconds: float, skipped: Sequence[str] = ()):
    """Write the markdown report (atomic)."""
    lines = ['# mmanat benchmarks', '',
             f'Generated by `{command}` on {time.strftime("%Y-%m-%d %H:%M")} in '
             f'{total_seconds:.0f} s.', '', '## Machine', '']
    lines += [f'- {k}: {v}' for k, v in info.items()]
    lines += ['', '## Results', '',
              'Errors are Euclidean distances in mm between predicted and true positions (world '
              'LPS). "time/case" is the wall time of one method call on one image pair '
              '(registration, or embedding both images and matching all points).', '']
    for t in tables:
        lines.append(t.to_markdown())
    if skipped:
        lines += ['## Skipped', ''] + [f'- {s}' for s in skipped] + ['']
    with atomic_path(path) as tmp:
        with open(tmp, 'w', encoding='utf-8') as f:
            f.write('\n'.join(lines))
    return path


def write_json(tables: Sequence[BenchmarkTable], path: str, command: str,
               info: Dict[str, str], total_seconds: float, skipped: Sequence[str] = ()):
    """Write every table with its per-case details as JSON (atomic)."""
    data = dict(command=command, machine=info, seconds=total_seconds, skipped=list(skipped),
                tables=[t.to_dict() for t in tables])
    with atomic_path(path) as tmp:
        with open(tmp, 'w', encoding='utf-8') as f:
            json.dump(data, f, indent=1)
            f.write('\n')
    return path
