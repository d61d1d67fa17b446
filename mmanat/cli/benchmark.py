"""Run the mmanat benchmarks and write a markdown report (+ JSON); by default
``work_dirs/benchmark/benchmarks.md``, ``--out docs/en/notes/benchmarks.md`` regenerates the
published one.

Benchmarks (``--only`` picks some):

* ``deformation``: the two real sample CTs (``data/samples/ct``; fetch them with
  ``python tools/fetch_sample_data.py``), each warped by known random affine + smooth
  deformations, intensity changes and field-of-view cuts; error of finding points sampled
  inside the body.
* ``cross_subject``: named landmarks of synthetic subjects, CT->CT, MR->MR, CT->MR.
* ``real_landmarks``: the rule-based anatomical landmarks (carina, lung apices, jugular notch,
  clavicle heads; ``data/samples/ct/lung{1,2}_landmarks.csv``) of one real sample CT found in
  the other, lung1->lung2 and lung2->lung1.
* ``lesion_tracking``: synthetic longitudinal lesion pairs in the DLT test.json layout,
  scored with CPM@Radius, CPM@10mm and MED by the lesion-tracking evaluator.
* ``speed``: embedding time / peak memory vs volume size, matching time vs number of points
  (needs ``--config``).
* ``xray``: chest radiographs (2D), two tables: one-shot landmark detection across synthetic
  subjects (one annotated template radiograph, other subjects as targets, the landmarks inside
  both), and the real sample radiograph (``data/samples/xray/RG1_UNCR.dcm``) against known
  random 2D deformations of itself (affine + smooth displacement, field-of-view cut, exposure
  change), points sampled inside the body.
* ``propagation``: organ label maps carried across synthetic subjects (and the rule-based lung
  masks lung1 -> lung2), Dice per organ and time: embedding propagation (``--config`` models,
  else the shipped SAM) vs SimpleITK affine / affine + B-spline
  (:mod:`mmanat.evaluation.benchmark.propagation`).

Methods: identity, SimpleITK affine and affine + B-spline registration (Mattes MI), ANTs
affine and SyN (optional extra ``pip install -e '.[ants]'``; without it their rows say
"antspyx not installed"), and each model given by ``--config`` / ``--checkpoint`` (naive,
stable-points and consensus matching). A model runs on the cases of its kind only: 3D models on
the volume benchmarks, 2D models (the 2D SAM) on ``xray``; elsewhere their rows say so.

Examples::

    python tools/benchmark.py --quick                       # baselines, < 10 min on 2 cores
    python tools/benchmark.py --only lesion_tracking deformation
    python tools/benchmark.py --config configs/sam/sam_r18-fpn3d_8xb6-20k_ct-2mm.py \\
        --checkpoint work_dirs/sam/iter_20000.pth --json work_dirs/bench.json
"""
import argparse
import os.path as osp
import shlex
import sys
import time
from typing import Optional, Sequence

from .runner import checkout_root, command

ROOT = checkout_root()

#: pixel spacing (mm) assumed for the sample radiograph, which stores none (an estimate from its
#: rib cage width; configs/sam/sam2d_tiny-fpn_1xb4-cpu-1000it_synthetic-cxr-samples.py uses it)
ASSUMED_XRAY_SPACING = 0.2

#: matching methods of the model rows: direct (``method='reference'``, the reference search),
#: stable points, consensus matching
MATCH_METHODS = ('direct', 'stable', 'consensus')

BENCHMARKS = ('deformation', 'cross_subject', 'real_landmarks', 'lesion_tracking', 'speed',
              'xray', 'propagation')

SETTINGS = {
    'quick': dict(
        deformation=dict(n_per_image=1, n_points=30, spacing=3.0),
        cross_subject=dict(n_pairs=1, spacing=4.0),
        lesion_tracking=dict(n_cases=2, spacing=3.0),
        speed=dict(sizes=(48, 64, 96), n_points=(1, 10, 100), repeats=1),
        xray=dict(n_templates=1, n_targets=4, spacing=2.0, n_deformations=2, n_points=30,
                  real_spacing=2.0),
        preset='quick'),
    'full': dict(
        deformation=dict(n_per_image=3, n_points=100, spacing=2.0),
        cross_subject=dict(n_pairs=3, spacing=2.0),
        lesion_tracking=dict(n_cases=6, spacing=2.0),
        speed=dict(sizes=(64, 96, 128, 160), n_points=(1, 10, 100, 1000, 10000), repeats=2),
        xray=dict(n_templates=2, n_targets=6, spacing=2.0, n_deformations=4, n_points=100,
                  real_spacing=1.0),
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
    p.add_argument('--match-methods', nargs='+', choices=MATCH_METHODS, default=list(MATCH_METHODS),
                   metavar='NAME', help='matching methods of the --config models (default: all '
                   'of direct, stable, consensus; stable points cost 60-110 s per case on 2 '
                   'cores)')
    p.add_argument('--baselines', nargs='*',
                   default=['identity', 'sitk_affine', 'sitk_bspline', 'ants_affine', 'ants_syn'],
                   help='baseline methods to run (default: identity sitk_affine sitk_bspline '
                   'ants_affine ants_syn; none: just the flag)')
    p.add_argument('--registration-preset', choices=('quick', 'default'),
                   help='preset of the SimpleITK / ANTs baselines (default: quick with --quick, '
                   'else default; mmanat.registration.PRESETS)')
    p.add_argument('--data-dir', default=osp.join(ROOT, 'data', 'samples'),
                   help='folder of the real sample data (ct/lung1.nrrd, ct/lung2.nrrd, '
                   'xray/RG1_UNCR.dcm)')
    p.add_argument('--work-dir', default=osp.join(ROOT, 'work_dirs', 'benchmark'),
                   help='where the lesion-tracking images, test.json and predictions go')
    p.add_argument('--seed', type=int, default=0,
                   help='seed of the synthetic cases, deformations and sampled points')
    p.add_argument('--out', default=osp.join(ROOT, 'work_dirs', 'benchmark', 'benchmarks.md'),
                   help='markdown report (default work_dirs/benchmark/benchmarks.md; the '
                   "project's published report is docs/en/notes/benchmarks.md: pass it "
                   'explicitly to regenerate it)')
    p.add_argument('--json', help='also write every table and per-case result as JSON')
    return p.parse_args(argv)


def log(msg):
    print(msg, flush=True)


@command
def main(argv=None) -> int:
    """Entry of ``mmanat-benchmark``: run the chosen benchmarks, write the report."""
    args = parse_args(argv)
    cmdline = 'python tools/benchmark.py ' + ' '.join(shlex.quote(a) for a in
                                                      (sys.argv[1:] if argv is None else argv))
    run_benchmarks(args.only or list(BENCHMARKS), quick=args.quick, configs=args.config,
                   checkpoints=args.checkpoint, model_names=args.model_name,
                   device=args.device, baseline_names=args.baselines, data_dir=args.data_dir,
                   work_dir=args.work_dir, seed=args.seed, out=args.out,
                   json_path=args.json, cmdline=cmdline,
                   registration_preset=args.registration_preset,
                   match_methods=args.match_methods)
    return 0


def run_benchmarks(wanted: Sequence[str], *, quick: bool = False,
                   configs: Sequence[str] = (), checkpoints: Sequence[str] = (),
                   model_names: Sequence[str] = (), device: Optional[str] = None,
                   baseline_names: Optional[Sequence[str]] = None,
                   data_dir: str = osp.join(ROOT, 'data', 'samples'),
                   work_dir: str = osp.join(ROOT, 'work_dirs', 'benchmark'), seed: int = 0,
                   out: str = osp.join(ROOT, 'docs', 'en', 'notes', 'benchmarks.md'),
                   json_path: Optional[str] = None,
                   cmdline: str = 'mmanat.cli.benchmark.run_benchmarks',
                   registration_preset: Optional[str] = None,
                   match_methods: Sequence[str] = MATCH_METHODS) -> str:
    """Run the benchmarks ``wanted`` (names of :data:`BENCHMARKS`) and write the report.

    Args:
        wanted (list[str]): benchmarks to run.
        quick (bool): few small cases (2-4 mm) and the quick registration preset.
        configs, checkpoints, model_names (list[str]): mmanat models (one checkpoint per
            config, or none: random init, for timing only) and their table names.
        device (str, optional): device of the models.
        baseline_names (list[str], optional): baseline methods (default: all five; the ANTs
            ones give rows saying "antspyx not installed" when it is absent).
        data_dir (str): folder of the real sample data (``ct/lung1.nrrd``, ``ct/lung2.nrrd``,
            ``xray/RG1_UNCR.dcm``).
        work_dir (str): where the lesion-tracking images, test.json and predictions go.
        seed (int): seed of the synthetic cases.
        out (str): markdown report.
        json_path (str, optional): also write every table and per-case result as JSON.
        cmdline (str): the command line recorded in the report.
        registration_preset (str, optional): ``'quick'`` or ``'default'`` preset of the
            registration baselines (None: ``'quick'`` with ``quick``, else ``'default'``).
        match_methods (list[str]): rows of each model, from :data:`MATCH_METHODS`.

    Returns:
        str: the report's path.

    Raises:
        InvalidInputError: checkpoints do not pair with configs.
    """
    t_start = time.perf_counter()
    from mmanat.evaluation import baselines, benchmark as br, cases as cs
    from mmanat.utils.exceptions import InvalidInputError

    settings = SETTINGS['quick' if quick else 'full']
    preset_quick = quick if registration_preset is None else registration_preset == 'quick'
    methods = baselines.default_baselines(quick=preset_quick, names=baseline_names)
    skipped, tables = [], []
    model_methods = []
    if configs:
        if checkpoints and len(checkpoints) != len(configs):
            raise InvalidInputError(f'give one --checkpoint per --config ({len(configs)} '
                                    f'configs, {len(checkpoints)} checkpoints).')
        unknown = sorted(set(match_methods) - set(MATCH_METHODS))
        if unknown or not match_methods:  # a wrong option is an error, not a skipped model
            raise InvalidInputError(f'match methods {unknown or "(none)"}: choose from '
                                    f'{", ".join(MATCH_METHODS)}.')
        try:
            model_methods = br.mmanat_methods(configs, checkpoints, model_names,
                                              device=device,
                                              direct='direct' in match_methods,
                                              stable='stable' in match_methods,
                                              consensus='consensus' in match_methods)
        except (ImportError, InvalidInputError) as err:
            skipped.append(f'mmanat models: could not be loaded ({err})')
            log(f'[skip] mmanat models: {err}')
    methods = list(model_methods) + methods
    log(f'methods: {[m.name for m in methods]}; benchmarks: {wanted}')

    if 'deformation' in wanted:
        paths = {k: osp.join(data_dir, 'ct', f'{k}.nrrd') for k in ('lung1', 'lung2')}
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
            cases = cs.deformation_cases(images, seed=seed, **settings['deformation'])
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
        cases = cs.cross_subject_cases(seed=seed, **settings['cross_subject'])
        log(f'[cross_subject] {len(cases)} cases generated in {time.perf_counter() - t0:.1f} s')
        table = br.run_landmark_benchmark(
            'cross_subject', 'Cross-subject landmarks, synthetic subjects', cases, methods,
            group=lambda c: '->'.join(c.meta['modalities']), log=log)
        table.notes.append(
            f'{settings["cross_subject"]["n_pairs"]} subject pair(s) per modality pair at '
            f'{settings["cross_subject"]["spacing"]} mm, both imaged over the same anatomical '
            'range (chest and upper abdomen); points = the named landmarks inside both images.')
        tables.append(table)

    if 'real_landmarks' in wanted:
        run_real_landmarks(data_dir, methods, tables, skipped)

    if 'lesion_tracking' in wanted:
        t0 = time.perf_counter()
        work = osp.join(work_dir, 'lesion_tracking')
        cases = cs.longitudinal_lesion_cases(seed=seed, out_dir=work,
                                             **settings['lesion_tracking'])
        log(f'[lesion_tracking] {len(cases)} cases ({sum(len(c.records) for c in cases)} '
            f'lesion pairs) generated in {time.perf_counter() - t0:.1f} s -> {work}')
        if cases:
            tables.append(br.run_lesion_benchmark(cases, methods, work, log=log))
        else:
            skipped.append('lesion_tracking: no synthetic subject had a lesion in view')

    if 'xray' in wanted:
        run_xray(data_dir, methods, settings['xray'], seed, tables, skipped)

    if 'propagation' in wanted:
        run_propagation(data_dir, model_methods, quick, seed, device, tables, skipped)

    if 'speed' in wanted:
        per_model = _one_row_per_model(model_methods)
        volume_models = [m for m in per_model if m.image_ndim == 3]
        if not per_model:
            msg = ('speed: needs an mmanat model (--config [--checkpoint]); the embedding and '
                   'matching timings are of a model, not of the baselines')
            skipped.append(msg)
            log(f'[skip] {msg}')
        elif len(volume_models) < len(per_model):
            msg = ('speed: measured on volumes; not timed: the 2D model(s) '
                   f'{", ".join(m.model_name for m in per_model if m.image_ndim != 3)}')
            skipped.append(msg)
            log(f'[skip] {msg}')
        for m in volume_models:
            for t in br.run_speed_benchmark(m.model, log=log, **settings['speed']):
                t.title += f' - {m.model_name}'
                tables.append(t)

    total = time.perf_counter() - t_start
    info = br.machine_info()
    for t in tables:
        print()
        print(t.to_markdown())
    for s in skipped:
        print(f'skipped: {s}')
    report = br.write_report(tables, out, cmdline, info, total, skipped)
    log(f'report written to {report} ({total:.0f} s in all)')
    if json_path:
        log(f'JSON written to {br.write_json(tables, json_path, cmdline, info, total, skipped)}')
    return report



def run_real_landmarks(data_dir, methods, tables, skipped) -> None:
    """Benchmark ``real_landmarks``: both directions between the real sample CTs; one row
    per method and direction (appended to ``tables``, or a note to ``skipped``)."""
    from mmanat.evaluation import benchmark as br, cases as cs
    from mmanat.evaluation.landmarks import LANDMARK_RULES
    missing = [p for p in (osp.join(data_dir, 'ct', f'{k}.nrrd') for k in ('lung1', 'lung2'))
               if not osp.isfile(p)]
    if missing:
        msg = (f'real_landmarks: real CT samples missing ({", ".join(missing)}); run '
               '`python tools/fetch_sample_data.py` first')
        skipped.append(msg)
        log(f'[skip] {msg}')
        return
    t0 = time.perf_counter()
    cases = cs.real_landmark_cases(data_dir)
    log(f'[real_landmarks] {len(cases)} cases ({len(cases[0].names)} landmarks) ready in '
        f'{time.perf_counter() - t0:.1f} s')
    table = br.run_landmark_benchmark(
        'real_landmarks', 'Anatomical landmarks across the real CTs (lung1 <-> lung2)', cases,
        methods, group=lambda c: c.name, log=log)
    table.notes.append(
        f'{len(cases[0].names)} landmarks found by rule ({", ".join(LANDMARK_RULES)}; '
        'mmanat.evaluation.landmarks, docs/en/user_guides/real_landmarks.md), original '
        'resolution (0.6 x 0.6 x 5 mm). The rules work per 5 mm slice, so the ground truth '
        'itself is uncertain by up to about 2.5 mm in z.')
    tables.append(table)


def run_xray(data_dir, methods, settings, seed, tables, skipped) -> None:
    """Benchmark ``xray``: two tables (appended to ``tables``; a note to ``skipped`` when the
    real radiograph is missing): synthetic subjects, one template against several targets, and
    the real sample radiograph against known random deformations of itself."""
    from mmanat.evaluation import benchmark as br, cases as cs
    t0 = time.perf_counter()
    cases = cs.xray_cross_subject_cases(n_templates=settings['n_templates'],
                                        n_targets=settings['n_targets'],
                                        spacing=settings['spacing'], seed=seed)
    log(f'[xray] {len(cases)} synthetic cases generated in {time.perf_counter() - t0:.1f} s')
    table = br.run_landmark_benchmark(
        'xray_cross_subject', 'Chest X-ray: one-shot landmarks across synthetic subjects',
        cases, methods, log=log)
    z0, z1 = cs.XRAY_Z_RANGE
    table.notes.append(
        f'{settings["n_templates"]} annotated template radiograph(s) x '
        f'{settings["n_targets"]} target subjects at {settings["spacing"]} mm pixels '
        f'(synthetic subjects projected over {z0:g}-{z1:g} mm above the pelvic floor, '
        f'parallel beam); points = the named landmarks inside both radiographs '
        f'({min(len(c.names) for c in cases)}-{max(len(c.names) for c in cases)} per case). '
        'Projected landmarks can overlap anatomy in front of or behind them.')
    tables.append(table)

    path = osp.join(data_dir, 'xray', 'RG1_UNCR.dcm')
    if not osp.isfile(path):
        msg = (f'xray: real radiograph missing ({path}); run `python tools/fetch_sample_data.py`'
               ' first')
        skipped.append(msg)
        log(f'[skip] {msg}')
        return
    from mmanat.fileio import read_xray
    t0 = time.perf_counter()
    image = read_xray(path)
    if not image.meta.get('spacing_known', True):
        # the sample stores Pixel Spacing 0\0; its rib cage spans ~1750 of 1841 columns, so
        # ~0.2 mm per pixel (the estimate the 2D SAM training config uses for it too)
        image = image.with_array(image.array, spacing=(ASSUMED_XRAY_SPACING, ) * 2)
    cases = cs.xray_deformation_cases(image, n_cases=settings['n_deformations'],
                                      n_points=settings['n_points'],
                                      spacing=settings['real_spacing'], seed=seed,
                                      name=osp.splitext(osp.basename(path))[0])
    log(f'[xray] {len(cases)} deformation cases generated in {time.perf_counter() - t0:.1f} s')
    table = br.run_landmark_benchmark(
        'xray_deformation', 'Chest X-ray: synthetic deformation of the real radiograph',
        cases, methods, log=log)
    table.notes.append(
        f'{len(cases)} cases of {osp.basename(path)} at {settings["real_spacing"]} mm: random '
        'in-plane rotation (<= 8 deg), scaling (<= 8 %), translation (<= 10 mm) and a smooth '
        'displacement field (<= 8 mm), field-of-view cut, exposure change (gamma, uneven '
        'exposure, noise); points sampled inside the body (the mask of '
        'mmanat.evaluation.cases.radiograph_body_mask).')
    if not image.meta.get('spacing_known', True):
        table.notes.append(
            f'{osp.basename(path)} stores no usable pixel spacing: its pixels are taken as '
            f'{ASSUMED_XRAY_SPACING} mm (its rib cage spans about 1750 of 1841 columns), an '
            'estimate, so the mm of this table are approximate.')
    tables.append(table)


def _one_row_per_model(model_methods):
    """The first method of each model (the benchmarks that time or use a model, not a
    matching method, run once per model whichever ``--match-methods`` were chosen)."""
    seen, out = set(), []
    for m in model_methods:
        if id(m.model) not in seen:
            seen.add(id(m.model))
            out.append(m)
    return out


def run_propagation(data_dir, model_methods, quick, seed, device, tables, skipped) -> None:
    """Benchmark ``propagation`` (:mod:`mmanat.evaluation.benchmark.propagation`): synthetic
    subject pairs at 4 mm (1 pair quick, 2 full), and the real lung masks when the sample
    CTs are present; tables appended to ``tables``."""
    from mmanat.evaluation.benchmark import propagation as pr
    models = [(m.model, m.model_name) for m in _one_row_per_model(model_methods)
              if m.image_ndim == 3]
    if not models:
        models = [pr.default_model(device)]
    methods = pr.propagation_methods([m for m, _ in models], [n for _, n in models],
                                     preset='quick' if quick else 'default')
    t0 = time.perf_counter()
    cases = pr.propagation_cases(n_pairs=1 if quick else 2, spacing=4.0, seed=seed)
    log(f'[propagation] {len(cases)} synthetic pairs generated in '
        f'{time.perf_counter() - t0:.1f} s')
    table = pr.run_propagation_benchmark(cases, methods, log=log)
    table.notes.append(f'{len(cases)} synthetic CT pair(s) at 4 mm (chest and upper abdomen); '
                       'labels resampled by nearest neighbour onto the target grid; time per '
                       'case includes embedding both images (embedding rows) or the '
                       'registration (SimpleITK rows).')
    tables.append(table)
    paths = [osp.join(data_dir, 'ct', f'{k}.nrrd') for k in ('lung1', 'lung2')]
    if not all(osp.isfile(p) for p in paths):
        skipped.append('propagation (real lungs): sample CTs missing; run '
                       '`python tools/fetch_sample_data.py` first')
        return
    real = pr.run_propagation_benchmark(
        [pr.real_lung_case(*paths)], methods, name='propagation_real',
        title='Label propagation: real lung masks, lung1 -> lung2 (Dice)', log=log)
    real.notes.append('Right / left lung masks of both sample CTs found by rule '
                      '(mmanat.evaluation.landmarks, split at the carina), original '
                      'resolution (0.6 x 0.6 x 5 mm).')
    tables.append(real)
