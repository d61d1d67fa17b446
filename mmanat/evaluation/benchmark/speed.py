"""The speed benchmark: embedding time and peak memory vs volume size, matching time vs
number of points."""
from __future__ import annotations

import os
import threading
import time
from typing import Callable, List, Sequence

import numpy as np

from .table import BenchmarkTable

__all__ = ['run_speed_benchmark']


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

    from ...apis import embed, match
    from ...structures.image import MedicalImage
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
