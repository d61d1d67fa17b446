"""UAE-M iterative recipe (Bai et al. 2023) on synthetic CT/MR pairs, with its evaluation.

    stage 1 (intra-volume, contrast augmentation)   -> model M0
    round r = 1..R: register every training MR to its CT with M(r-1) (embedding matches ->
                    rigid -> robust affine -> SimpleITK B-spline), warp the MR onto the CT,
                    train stage 2 (inter-modality loss) on the aligned pairs from M(r-1)'s
                    weights                          -> model Mr

Every training subject is a synthetic CT and the MR of the same subject moved by a known
rigid + smooth deformation, so the script also measures how well each round registers its
own training pairs. Held-out pairs (other subjects) give the CT->MR landmark error of every
model (direct embedding matching and embedding-driven registration) next to plain SimpleITK
mutual-information registration (affine, affine + B-spline) and the identity.

    python tools/uae_m_recipe.py --stage1 work_dirs/uae_m_intra_tiny/iter_200.pth
    python tools/uae_m_recipe.py --init checkpoints/sam_default.pth --stage1-iters 200  # all
    python tools/uae_m_recipe.py --stage1 S1.pth --rounds 2 --iters 150 --train-subjects 8

Outputs in --work-dir (default work_dirs/uae_m_recipe): pairs/ (training CT + moved MR),
round<r>/pairs.csv + registered MRs + the stage-2 run (iter_<N>.pth), report.md, report.json.
Finished steps are reused when the script is run again (delete a folder to redo it).
"""
import argparse
import csv
import json
import os
import os.path as osp
import subprocess
import sys
import time

from .outputs import output_dir, output_file
from .runner import checkout_root, command

ROOT = checkout_root()

STAGE1_CONFIG = osp.join('configs', 'sam',
                         'uae-m-intra_tiny-fpn3d_1xb2-cpu-300it_synthetic-ct-mr-4mm.py')
STAGE2_CONFIG = osp.join('configs', 'sam',
                         'uae-m-inter_tiny-fpn3d_1xb2-cpu-150it_registered-ct-mr.py')


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    g = p.add_mutually_exclusive_group()
    g.add_argument('--stage1', help='stage-1 (intra-volume) checkpoint M0')
    g.add_argument('--stage1-iters', type=int, default=200,
                   help='without --stage1: train stage 1 for this many iterations first')
    p.add_argument('--init', default=None,
                   help='weights stage-1 training starts from (e.g. checkpoints/sam_default.pth)')
    p.add_argument('--stage1-config', default=STAGE1_CONFIG,
                   help='config of stage 1 (intra-volume CT/MR training)')
    p.add_argument('--stage2-config', default=STAGE2_CONFIG,
                   help='config of stage 2 (inter-volume training on registered pairs)')
    p.add_argument('--rounds', type=int, default=2, help='register + retrain rounds')
    p.add_argument('--iters', type=int, default=150, help='stage-2 iterations per round')
    p.add_argument('--train-subjects', type=int, default=8,
                   help='synthetic subjects to train on')
    p.add_argument('--test-cases', type=int, default=3,
                   help='synthetic CT/MR cases to evaluate registration on')
    p.add_argument('--spacing', type=float, default=4.0, help='synthetic subject voxel size')
    p.add_argument('--seed', type=int, default=7000, help='first training subject seed')
    p.add_argument('--test-seed', type=int, default=9000, help='first held-out subject seed')
    p.add_argument('--test-max-rotation', type=float, default=8.0,
                   help='held-out cases: largest rotation (deg) of the moved MR')
    p.add_argument('--test-max-translation', type=float, default=15.0,
                   help='held-out cases: largest translation (mm) of the moved MR')
    p.add_argument('--score-threshold', type=float, default=0.5,
                   help='registration: keep matches with a score above it')
    p.add_argument('--ransac-threshold', type=float, default=15.0,
                   help='registration: RANSAC inlier distance (mm) of the rigid fit; 0 = the '
                   'Huber fits on all kept matches')
    p.add_argument('--no-baselines', action='store_true', help='skip the SimpleITK rows')
    p.add_argument('--extra', nargs='+', default=[], metavar='NAME=CKPT',
                   help='more checkpoints to evaluate in the same table (e.g. a stage 2 '
                   'trained on perfectly aligned synthetic pairs)')
    p.add_argument('--device', default=None, help='cpu, cuda, cuda:1 (default: GPU if any)')
    p.add_argument('--work-dir', default=osp.join('work_dirs', 'uae_m_recipe'), type=output_dir,
                   help='where the stage runs and the report go')
    p.add_argument('--out', default=None, type=output_file,
                   help='markdown report (default WORK_DIR/report.md)')
    return p.parse_args(argv)


def log(msg):
    print(f'[uae_m_recipe {time.strftime("%H:%M:%S")}] {msg}', flush=True)


def train(config, work_dir, iters, load_from=None, options=()):
    """Run ``mmanat-train`` (:mod:`mmanat.cli.train`) in a subprocess; returns the final
    checkpoint (reused if present)."""
    ckpt = osp.join(work_dir, f'iter_{iters}.pth')
    if osp.isfile(ckpt):
        log(f'reusing {ckpt}')
        return ckpt
    cmd = [sys.executable, '-m', 'mmanat.cli.train', config, '--work-dir', work_dir,
           '--cfg-options', f'train_cfg.max_iters={iters}',
           f'default_hooks.checkpoint.interval={iters}'] + list(options)
    if load_from:
        cmd.append(f'load_from={load_from}')
    log('training: ' + ' '.join(cmd))
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=ROOT)
    log(f'trained {iters} iterations in {time.perf_counter() - t0:.0f} s')
    if not osp.isfile(ckpt):
        from mmanat.utils.exceptions import MMAnatError
        raise MMAnatError(f'training finished without writing {ckpt}')
    return ckpt


def training_pairs(args, pairs_dir):
    """Write (or reuse) the training CTs and moved MRs; returns cases with ground truth."""
    from mmanat.evaluation.cases import ct_mr_registration_cases
    from mmanat.fileio import write_image
    log(f'generating {args.train_subjects} training CT/MR pairs (spacing {args.spacing} mm)')
    cases = ct_mr_registration_cases(args.train_subjects, spacing=args.spacing,
                                     seed=args.seed, n_body_points=30)
    os.makedirs(pairs_dir, exist_ok=True)
    for k, case in enumerate(cases):
        for name, img in (('ct', case.template), ('mr', case.target)):
            path = osp.join(pairs_dir, f'subject{k:03d}_{name}.nii.gz')
            if not osp.isfile(path):
                write_image(img, path)
    return cases


def _ransac(args):
    return args.ransac_threshold if args.ransac_threshold > 0 else None


def register_round(model, cases, out_dir, args):
    """Register every training MR to its CT, write the aligned pairs and pairs.csv; returns
    the mean landmark error of these registrations (mm) against the known deformation."""
    import numpy as np

    from mmanat.apis import register_with_embeddings
    from mmanat.fileio import atomic_path, write_image
    os.makedirs(out_dir, exist_ok=True)
    index = osp.join(out_dir, 'pairs.csv')
    errors_file = osp.join(out_dir, 'registration_errors.json')
    if osp.isfile(index) and osp.isfile(errors_file):
        log(f'reusing {index}')
        return json.load(open(errors_file))
    rows, errs, failed = [], [], 0
    for k, case in enumerate(cases):
        try:
            reg = register_with_embeddings(model, case.target, case.template,
                                           score_threshold=args.score_threshold,
                                           ransac_threshold_mm=_ransac(args),
                                           deformable='bspline', warp=True)
        except Exception as exc:  # noqa: BLE001 - a failed pair is left out and counted
            log(f'  subject {k}: registration failed ({exc}); pair left out')
            failed += 1
            continue
        pred = reg.map_fixed_to_moving(case.template_points)
        e = np.linalg.norm(pred - case.target_points, axis=1)
        errs.append(e)
        ct_path = osp.join(out_dir, f'subject{k:03d}_ct.nii.gz')
        mr_path = osp.join(out_dir, f'subject{k:03d}_mr_registered.nii.gz')
        write_image(case.template, ct_path)
        write_image(reg.warped, mr_path)
        rows.append((osp.basename(ct_path), osp.basename(mr_path), f'subject{k:03d}'))
        log(f'  subject {k}: {reg.info["n_kept"]}/{reg.info["n_grid"]} matches kept, '
            f'landmark error {e.mean():.2f} mm (identity '
            f'{np.linalg.norm(case.template_points - case.target_points, axis=1).mean():.2f})')
    if not rows:
        from mmanat.utils.exceptions import MMAnatError
        raise MMAnatError('every registration failed; the model cannot align these pairs')
    allerr = np.concatenate(errs)
    res = dict(mre=float(allerr.mean()), median=float(np.median(allerr)), pairs=len(rows),
               failed=failed)
    with atomic_path(index) as tmp, open(tmp, 'w', newline='') as fh:
        w = csv.writer(fh)
        w.writerow(['ct', 'mr', 'subject_id'])
        w.writerows(rows)
    with atomic_path(errors_file) as tmp, open(tmp, 'w') as fh:
        json.dump(res, fh)
    return res


@command
def main(argv=None) -> int:
    """Entry of ``mmanat-uae-m-recipe``."""
    args = parse_args(argv)
    import numpy as np
    import torch

    from mmanat.apis import init_model
    from mmanat.evaluation import (EmbeddingRegistrationMethod, MMAnatMethod,
                                   SitkBSplineFromIdentityMethod, ct_mr_registration_cases,
                                   default_baselines, run_landmark_benchmark)
    from mmanat.utils.exceptions import InvalidInputError, MMAnatError
    t_start = time.perf_counter()
    torch.manual_seed(0)
    wd = args.work_dir
    os.makedirs(wd, exist_ok=True)
    try:
        if args.stage1:
            if not osp.isfile(args.stage1):
                raise InvalidInputError(f'--stage1 {args.stage1}: file not found')
            stage1 = args.stage1
        else:
            stage1 = train(args.stage1_config, osp.join(wd, 'stage1'), args.stage1_iters,
                           load_from=args.init)
        train_cases = training_pairs(args, osp.join(wd, 'pairs'))
        log(f'generating {args.test_cases} held-out CT/MR cases')
        test_cases = ct_mr_registration_cases(
            args.test_cases, spacing=args.spacing, seed=args.test_seed, n_body_points=30,
            max_rotation_deg=args.test_max_rotation,
            max_translation_mm=args.test_max_translation)
        checkpoints = {'intra-only (M0)': stage1}
        reg_errors = {}
        prev = stage1
        for r in range(1, args.rounds + 1):
            rd = osp.join(wd, f'round{r}')
            log(f'round {r}: registering the training pairs with {prev}')
            model = init_model(None, prev, device=args.device)
            reg_errors[f'round {r} registration (with M{r - 1})'] = register_round(
                model, train_cases, rd, args)
            del model
            prev = train(args.stage2_config, rd, args.iters, load_from=prev,
                         options=[f'train_dataloader.dataset.ann_file={osp.join(rd, "pairs.csv")}'])
            checkpoints[f'round {r} (M{r})'] = prev

        for item in args.extra:
            name, sep, ckpt = item.partition('=')
            if not sep or not osp.isfile(ckpt):
                raise InvalidInputError(f'--extra {item!r}: expected NAME=CHECKPOINT (an '
                                        'existing file)')
            checkpoints[name] = ckpt
        methods = []
        for name, ckpt in checkpoints.items():
            model = init_model(None, ckpt, device=args.device)
            methods.append(MMAnatMethod(model, f'{name} match'))
            reg_kw = dict(score_threshold=args.score_threshold,
                          ransac_threshold_mm=_ransac(args))
            methods.append(EmbeddingRegistrationMethod(
                model, f'{name} register, landmark affine only', deformable='none', **reg_kw))
            methods.append(EmbeddingRegistrationMethod(model, f'{name} register', **reg_kw))
        if not args.no_baselines:
            sitk_names = ('identity', 'sitk_affine', 'sitk_bspline')
            for m in (default_baselines(quick=True, names=sitk_names)
                      + [SitkBSplineFromIdentityMethod('quick')]):
                if m.name != 'identity':
                    m.name = m.name + ' (MI)'
                methods.append(m)
        table = run_landmark_benchmark(
            'uae_m_recipe', 'CT->MR landmarks, same subject, MR moved by a known rigid + '
            'smooth deformation', test_cases, methods, log=lambda *a: None)
    except MMAnatError as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    from mmanat.fileio import atomic_path
    n_pts = sum(len(c.template_points) for c in test_cases)
    notes = [
        f'{len(test_cases)} held-out subjects (seeds {args.test_seed}..'
        f'{args.test_seed + len(test_cases) - 1}), {n_pts} points (named landmarks + body '
        f'points), synthetic subjects at {args.spacing:g} mm, MR moved by up to '
        f'{args.test_max_rotation:g} deg and {args.test_max_translation:g} mm plus a smooth '
        f'deformation; stage 2: {args.iters} '
        f'iterations per round on {args.train_subjects} training pairs.',
        '"match": each CT point matched in the MR by embedding similarity; "register": '
        'embedding-driven registration (grid matches -> RANSAC rigid -> robust affine -> '
        'SimpleITK B-spline) maps the points ("landmark affine only": without the B-spline); '
        '"(MI)": plain SimpleITK Mattes mutual information; "identity_bspline (MI)": the same '
        'B-spline refinement started from the identity (what the deformable step does alone).',
    ]
    shown = ' '.join(argv if argv is not None else sys.argv[1:])
    lines = ['# UAE-M iterative recipe', '',
             f'`python tools/uae_m_recipe.py {shown}`'
             f' ({time.perf_counter() - t_start:.0f} s)', '',
             '## Registration of the training pairs (what stage 2 trains on)', '',
             '| round | MRE (mm) | median (mm) | pairs | failed |', '|---|---|---|---|---|']
    for k, v in reg_errors.items():
        lines.append(f'| {k} | {v["mre"]:.2f} | {v["median"]:.2f} | {v["pairs"]} | '
                     f'{v["failed"]} |')
    lines += ['', table.to_markdown(), ''] + [f'- {n}' for n in notes]
    out = args.out or osp.join(wd, 'report.md')
    with atomic_path(out) as tmp, open(tmp, 'w', encoding='utf-8') as fh:
        fh.write('\n'.join(lines) + '\n')
    with atomic_path(osp.join(wd, 'report.json')) as tmp, open(tmp, 'w') as fh:
        json.dump(dict(registration=reg_errors, table=table.to_dict(),
                       checkpoints=checkpoints), fh, indent=1, default=str)
    print('\n'.join(lines))
    print(f'\nreport: {out}')
    del np
    return 0

