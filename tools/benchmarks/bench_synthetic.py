"""Benchmark: time to generate one synthetic subject with its CT, MR and X-ray.

Example::

    python tools/benchmarks/bench_synthetic.py --runs 5

Prints per-stage wall-clock times (label map, CT, MR, X-ray), their total and the process
CPU time (all threads) for each run, and the medians over runs. On a shared machine the CPU
time divided by the number of cores used is the better estimate of the wall time on idle
cores; the load average is printed alongside. Default grid: 2 mm, 176 x 144 x 160 voxels
(x, y, z; about 160^3), the size the issue's target (< 2 s on 2 cores) refers to. The first
(warm-up) run is not counted.
"""
import argparse
import os
import statistics
import time



def parse_args(argv=None):
    p = argparse.ArgumentParser(description='Time synthetic subject generation.')
    p.add_argument('--runs', type=int, default=5, help='timed runs (median reported)')
    p.add_argument('--spacing', type=float, default=2.0, help='voxel size in mm')
    p.add_argument('--shape', type=int, nargs=3, default=None, metavar=('Z', 'Y', 'X'),
                   help='grid size (default: the 352 x 288 x 320 mm field of view)')
    p.add_argument('--threads', type=int, default=2, help='shape-evaluation threads')
    p.add_argument('--seed', type=int, default=0, help='seed of the first subject')
    return p.parse_args(argv)


def run_once(seed, args):
    """One subject: returns ``{stage: seconds}`` and the grid shape."""
    import numpy as np

    from mmanat.datasets.synthetic import (STRUCTURE_BY_NAME, generate_subject, render_ct,
                                           render_mr, render_xray)
    times = {}
    c0 = time.process_time()
    t0 = time.perf_counter()
    kwargs = dict(spacing=args.spacing, threads=args.threads)
    if args.shape:
        kwargs['shape'] = tuple(args.shape)
    subject = generate_subject(seed, **kwargs)
    t1 = time.perf_counter()
    ct = render_ct(subject)
    t2 = time.perf_counter()
    render_mr(subject, preset='T1')
    t3 = time.perf_counter()
    table = subject.labels.array == STRUCTURE_BY_NAME['table'].label
    render_xray(ct, subject.landmarks, exclude=table)
    t4 = time.perf_counter()
    times.update(labels=t1 - t0, ct=t2 - t1, mr=t3 - t2, xray=t4 - t3, total=t4 - t0,
                 cpu=time.process_time() - c0)
    return times, subject.labels.shape, int(np.prod(subject.labels.shape))


def main(argv=None):
    args = parse_args(argv)
    run_once(args.seed + 1000, args)  # warm-up: imports, caches
    rows = []
    for k in range(args.runs):
        times, shape, nvox = run_once(args.seed + k, args)
        rows.append(times)
        print(f'run {k}: shape(zyx)={shape} ' + ' '.join(
            f'{name}={sec:.3f}s' for name, sec in times.items()))
    med = {name: statistics.median(r[name] for r in rows) for name in rows[0]}
    cores = len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count()
    load = os.getloadavg()[0] if hasattr(os, 'getloadavg') else float('nan')
    print(f'median over {args.runs} runs ({nvox / 1e6:.2f} M voxels, {args.spacing:g} mm, '
          f'{cores} cores, load {load:.1f}): ' + ' '.join(
              f'{name}={sec:.3f}s' for name, sec in med.items()))
    return med


if __name__ == '__main__':
    main()
