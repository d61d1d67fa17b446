#!/usr/bin/env python
"""Run the mmanat benchmarks and write ``resources/benchmarks.md`` (+ JSON).

Benchmarks (``--only`` picks some):

* ``deformation``: the two real sample CTs (``data/samples/ct``; fetch them with
  ``python tools/fetch_sample_data.py``), each warped by known random affine + smooth
  deformations, intensity changes and field-of-view cuts; error of finding points sampled
  inside the body.
* ``cross_subject``: named landmarks of synthetic subjects, CT->CT, MR->MR, CT->MR.
* ``lesion_tracking``: synthetic longitudinal lesion pairs in the DLT test.json layout,
  scored with CPM@Radius, CPM@10mm and MED by the lesion-tracking evaluator.
* ``speed``: embedding time / peak memory vs volume size, matching time vs number of points
  (needs ``--config``).

Methods: identity, SimpleITK affine and affine + B-spline registration (Mattes MI), and each
model given by ``--config`` / ``--checkpoint`` (naive and stable-points matching).

Examples::

    python tools/benchmark.py --quick                       # baselines, < 10 min on 2 cores
    python tools/benchmark.py --only lesion_tracking deformation
    python tools/benchmark.py --config configs/sam/sam_r18_fpn_ct.py \\
        --checkpoint work_dirs/sam/iter_20000.pth --json work_dirs/bench.json
"""
import argparse
import os.path as osp
import shlex
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if ROOT not in sys.path:  # allow running from a checkout without installation
    sys.path.insert(0, ROOT)

BENCHMARKS = ('deformation', 'cross_subject', 'lesion_tracking', 'speed')

SETTINGS = {
    'quick': dict(
        deformation=dict(n_per_image=1, n_points=30, spacing=3.0),
        cross_subject=dict(n_pairs=1, spacing=4.0),
        lesion_tracking=dict(n_cases=2, spacing=3.0),
        speed=dict(sizes=(48, 64, 96), n_points=(1, 10, 100), repeats=1),
        preset='quick'),
    'full': dict(
        deformation=dict(n_per_image=3, n_points=100, spacing=2.0),
        cross_subject=dict(n_pairs=3, spacing=2.0),
        lesion_tracking=dict(n_cases=6, spacing=2.0),
        speed=dict(sizes=(64, 96, 128, 160), n_points=(1, 10, 100, 1000, 10000), repeats=2),
        preset='default'),
}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='mmanat benchmarks: metrics tables for models and '
                                'baselines', formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split('Examples::')[-1])
    p.add_argument('--quick', action='store_true',
                   help='few small cases (2-4 mm) and the quick registration preset')
    p.add_argument('--only', nargs='+', choices=BENCHMARKS, metavar='NAME',
                   help=f'run only these benchmarks ({", ".join(BENCHMARKS)})')
    p.add_argument('--config', nargs='+', default=[], help='mmanat model config(s)')
    p.add_argument('--checkpoint', nargs='+', default=[],
                   help='checkpoint(s), one per --config (omit: random init, for timing only)')
    p.add_argument('--model-name', nargs='+', default=[], help='table names of the models')
    p.add_argument('--device', help='device of the models (default: GPU when present)')
    p.add_argument('--baselines', nargs='*', default=['identity', 'sitk_affine', 'sitk_bspline'],
                   help='baseline methods to run (default: all three; none: just the flag)')
    p.add_argument('--data-dir', default=osp.join(ROOT, 'data', 'samples'),
                   help='folder of the real sample data (ct/lung1.nrrd, ct/lung2.nrrd)')
    p.add_argument('--work-dir', default=osp.join(ROOT, 'work_dirs', 'benchmark'),
                   help='where the lesion-tracking images, test.json and predictions go')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--out', default=osp.join(ROOT, 'resources', 'benchmarks.md'),
                   help='markdown report (default resources/benchmarks.md)')
    p.add_argument('--json', help='also write every table and per-case result as JSON')
    return p.parse_args(argv)


def log(msg):
    print(msg, flush=True)


def main(argv=None):
    args = parse_args(argv)
    command = 'python tools/benchmark.py ' + ' '.join(shlex.quote(a) for a in
                                                      (sys.argv[1:] if argv is None else argv))
    t_start = time.perf_counter()
    from mmanat.evaluation import baselines, benchmark_runner as br, cases as cs
    from mmanat.utils.exceptions import InvalidInputError

    settings = SETTINGS['quick' if args.quick else 'full']
    wanted = args.only or list(BENCHMARKS)
    methods = baselines.default_baselines(quick=args.quick, names=args.baselines)
    skipped, tables = [], []
    model_methods, models = [], []
    if args.config:
        if args.checkpoint and len(args.checkpoint) != len(args.config):
            raise SystemExit('give one --checkpoint per --config')
        try:
            model_methods = br.mmanat_methods(args.config, args.checkpoint, args.model_name,
                                              device=args.device)
            models = [m.model for m in model_methods if not m.stable_points]
        except (ImportError, InvalidInputError) as err:
            skipped.append(f'mmanat models: could not be loaded ({err})')
            log(f'[skip] mmanat models: {err}')
    methods = list(model_methods) + methods
    log(f'methods: {[m.name for m in methods]}; benchmarks: {wanted}')

    if 'deformation' in wanted:
        paths = {k: osp.join(args.data_dir, 'ct', f'{k}.nrrd') for k in ('lung1', 'lung2')}
        missing = [p for p in paths.values() if not osp.isfile(p)]
        if missing:
            msg = (f'deformation: real CT samples missing ({", ".join(missing)}); run '
                   '`python tools/fetch_sample_data.py` first')
            skipped.append(msg)
            log(f'[skip] {msg}')
        else:
            from mmanat.fileio import read_volume
            t0 = time.perf_counter()
            images = {k: read_volume(p, modality='CT') for k, p in paths.items()}
            cases = cs.deformation_cases(images, seed=args.seed, **settings['deformation'])
            log(f'[deformation] {len(cases)} cases generated in {time.perf_counter() - t0:.1f} s')
            table = br.run_landmark_benchmark(
                'deformation', 'Synthetic deformation of the real CTs (lung1, lung2)', cases,
                methods, log=log)
            table.notes.append(
                f'{len(cases)} cases at {settings["deformation"]["spacing"]} mm: random '
                'rotation (<= 8 deg), scaling (<= 8 %), translation (<= 10 mm) and a smooth '
                'displacement field (<= 8 mm), field-of-view cut, intensity change. The '
                'smooth synthetic field favours the B-spline baseline (same model family).')
            tables.append(table)

    if 'cross_subject' in wanted:
        t0 = time.perf_counter()
        cases = cs.cross_subject_cases(seed=args.seed, **settings['cross_subject'])
        log(f'[cross_subject] {len(cases)} cases generated in {time.perf_counter() - t0:.1f} s')
        table = br.run_landmark_benchmark(
            'cross_subject', 'Cross-subject landmarks, synthetic subjects', cases, methods,
            group=lambda c: '->'.join(c.meta['modalities']), log=log)
        table.notes.append(
            f'{settings["cross_subject"]["n_pairs"]} subject pair(s) per modality pair at '
            f'{settings["cross_subject"]["spacing"]} mm, both imaged over the same anatomical '
            'range (chest and upper abdomen); points = the named landmarks inside both images.')
        tables.append(table)

    if 'lesion_tracking' in wanted:
        t0 = time.perf_counter()
        work = osp.join(args.work_dir, 'lesion_tracking')
        cases = cs.longitudinal_lesion_cases(seed=args.seed, out_dir=work,
                                             **settings['lesion_tracking'])
        log(f'[lesion_tracking] {len(cases)} cases ({sum(len(c.records) for c in cases)} '
            f'lesion pairs) generated in {time.perf_counter() - t0:.1f} s -> {work}')
        if cases:
            tables.append(br.run_lesion_benchmark(cases, methods, work, log=log))
        else:
            skipped.append('lesion_tracking: no synthetic subject had a lesion in view')

    if 'speed' in wanted:
        if not models:
            msg = ('speed: needs an mmanat model (--config [--checkpoint]); the embedding and '
                   'matching timings are of a model, not of the baselines')
            skipped.append(msg)
            log(f'[skip] {msg}')
        else:
            for model, name in zip(models, [m.name for m in model_methods
                                            if not m.stable_points]):
                for t in br.run_speed_benchmark(model, log=log, **settings['speed']):
                    t.title += f' - {name}'
                    tables.append(t)

    total = time.perf_counter() - t_start
    info = br.machine_info()
    for t in tables:
        print()
        print(t.to_markdown())
    for s in skipped:
        print(f'skipped: {s}')
    out = br.write_report(tables, args.out, command, info, total, skipped)
    log(f'report written to {out} ({total:.0f} s in all)')
    if args.json:
        log(f'JSON written to {br.write_json(tables, args.json, command, info, total, skipped)}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
