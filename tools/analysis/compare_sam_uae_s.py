"""SAM vs UAE-S on cross-subject landmark matching (synthetic subjects), naive vs stable points.

For pairs of synthetic subjects that no training config uses (seeds from ``--seed``), the named
landmarks of the template subject are searched in the target subject (both CT, imaged over the
same anatomical range; :func:`mmanat.evaluation.cases.cross_subject_cases`). Each model embeds
every image once; points are matched with the naive argmax (SAM: (fine + coarse) / 2, UAE-S:
(fine + coarse + semantic) / 3) and with stable points (UAE, ``stable_points=True``). The
table gives the mean radial error (MRE), median, fraction within 10 mm, and the time per
point of the matching step (the embedding time per image is listed separately; it is paid
once per image and dominates single-point queries).

Example (checkpoints from ``tools/train.py``)::

    python tools/analysis/compare_sam_uae_s.py \
        --sam-config configs/sam/sam_tiny-fpn3d_1xb2-cpu-300it_synthetic-ct.py \
        --sam-checkpoint work_dirs/sam_tiny-fpn3d_1xb2-cpu-300it_synthetic-ct/iter_300.pth \
        --uae-config configs/sam/uae-s_tiny-fpn3d_1xb3-cpu-300it_synthetic-ct.py \
        --uae-checkpoint work_dirs/uae-s_tiny-fpn3d_1xb3-cpu-300it_synthetic-ct/iter_300.pth \
        --pairs 3 --out work_dirs/compare_sam_uae_s.json

Without --sam-checkpoint / --uae-checkpoint the shipped checkpoints (checkpoints/sam_default.pth,
checkpoints/uae_s_default.pth) are compared. With --random-init the models keep their random
initialisation: the script still runs end to end (useful to check the set-up and the timing)
but prints a warning, because the errors mean nothing.
"""
import argparse
import json
import sys
import time
import warnings

import numpy as np



def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--sam-config', default=None,
                   help='SAM config (default: the one stored in the checkpoint)')
    p.add_argument('--sam-checkpoint', default=None,
                   help='SAM .pth (default: the shipped checkpoints/sam_default.pth)')
    p.add_argument('--uae-config', default=None,
                   help='UAE-S config (default: the one stored in the checkpoint)')
    p.add_argument('--uae-checkpoint', default=None,
                   help='UAE-S .pth (default: the shipped checkpoints/uae_s_default.pth)')
    p.add_argument('--random-init', action='store_true',
                   help='random weights for both (needs --sam-config and --uae-config; only '
                   'the timings mean anything)')
    p.add_argument('--pairs', type=int, default=2, help='template/target subject pairs')
    p.add_argument('--seed', type=int, default=100000,
                   help='seed of the first subject (keep it away from the training seeds)')
    p.add_argument('--spacing', type=float, default=2.0, help='subject voxel size (mm)')
    p.add_argument('--method', default='reference', choices=['reference', 'coarse_to_fine'],
                   help='argmax search of mmanat.apis.match')
    p.add_argument('--no-stable', action='store_true', help='skip the stable-points rows')
    p.add_argument('--ablate-semantic', action='store_true',
                   help='also match with UAE-S maps without the semantic level')
    p.add_argument('--device', default=None, help="'cpu', 'cuda' (default: GPU if present)")
    p.add_argument('--out', default=None, help='write the results as JSON here')
    return p.parse_args(argv)


def _load(config, checkpoint, device, label):
    from mmanat.apis import init_model
    if checkpoint is None:
        warnings.warn(f'{label}: no checkpoint given - the model is RANDOMLY INITIALISED and '
                      'its matching errors mean nothing (only the timings do). Pass '
                      f'--{label.lower().replace("-", "")}-checkpoint.', stacklevel=2)
        print(f'WARNING: {label} runs with random weights; its errors are meaningless.',
              file=sys.stderr)
    return init_model(config, checkpoint, device=device)


def _without_semantic(maps):
    from mmanat.structures.embedding_map import EmbeddingMaps
    keep = {k: v for k, v in maps.maps.items() if k != 'semantic'}
    return EmbeddingMaps(keep, {k: maps.strides[k] for k in keep}, maps.input_grid,
                         maps.source_grid, maps.model, maps.meta)


def _sync(device):
    import torch
    if device is not None and str(device).startswith('cuda'):
        torch.cuda.synchronize()


def evaluate(models, cases, method='reference', stable=True, ablate_semantic=False):
    """Rows of results: one per (model, inference variant), errors pooled over all cases.

    ``models``: list of (label, model). Returns (rows, embed_seconds per label)."""
    from mmanat.apis import embed, match
    from mmanat.evaluation.metrics.landmark_metric import landmark_summary
    rows, embed_times = [], {}
    for label, model in models:
        device = next(model.parameters()).device
        variants = [('naive', False, False)]
        if stable:
            variants.append(('stable points', True, False))
        has_sem = False
        per_variant = {v[0]: dict(pred=[], gt=[], seconds=0.0, n=0) for v in variants}
        t_embed, n_embed = 0.0, 0
        for case in cases:
            maps = []
            for img in (case.template, case.target):
                _sync(device)
                t0 = time.perf_counter()
                maps.append(embed(model, img))
                _sync(device)
                t_embed += time.perf_counter() - t0
                n_embed += 1
            has_sem = maps[0].semantic is not None
            todo = list(variants)
            if ablate_semantic and has_sem:
                todo += [(f'{name} (no semantic)', sp, True) for name, sp, _ in variants]
                for name, _, _ in variants:
                    per_variant.setdefault(f'{name} (no semantic)',
                                           dict(pred=[], gt=[], seconds=0.0, n=0))
            for name, stable_points, drop in todo:
                tmpl, tgt = maps
                if drop:
                    tmpl, tgt = _without_semantic(tmpl), _without_semantic(tgt)
                _sync(device)
                t0 = time.perf_counter()
                res = match(tmpl, case.template_points, tgt, method=method,
                            stable_points=stable_points)
                _sync(device)
                acc = per_variant[name]
                acc['seconds'] += time.perf_counter() - t0
                acc['n'] += len(case.template_points)
                acc['pred'].append(res.points)
                acc['gt'].append(case.target_points)
        embed_times[label] = t_embed / max(n_embed, 1)
        for name, acc in per_variant.items():
            summary = landmark_summary(np.concatenate(acc['pred']), np.concatenate(acc['gt']))
            rows.append(dict(model=label, inference=name,
                             similarity='(fine+coarse+semantic)/3' if has_sem and
                             'no semantic' not in name else '(fine+coarse)/2',
                             n=summary['n'], mre=summary['mre'], median=summary['median'],
                             within_10mm=summary['within_10mm'],
                             ms_per_point=1000.0 * acc['seconds'] / max(acc['n'], 1),
                             embed_s_per_image=embed_times[label]))
    return rows, embed_times


def format_table(rows):
    """Markdown table of :func:`evaluate` rows."""
    lines = ['| model | inference | similarity | points | MRE (mm) | median (mm) | '
             '<= 10 mm | match ms/point | embed s/image |',
             '|---|---|---|---|---|---|---|---|---|']
    for r in rows:
        lines.append(f"| {r['model']} | {r['inference']} | {r['similarity']} | {r['n']} | "
                     f"{r['mre']:.1f} | {r['median']:.1f} | {100 * r['within_10mm']:.0f} % | "
                     f"{r['ms_per_point']:.1f} | {r['embed_s_per_image']:.2f} |")
    return '\n'.join(lines)


def main(argv=None):
    args = parse_args(argv)
    from mmanat.evaluation.cases import cross_subject_cases
    from mmanat.fileio import atomic_path
    from mmanat.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    from mmanat.utils.model_zoo import resolve_checkpoint
    sam_ckpt = resolve_checkpoint(args.sam_checkpoint, args.random_init, args.sam_config, 'sam')
    uae_ckpt = resolve_checkpoint(args.uae_checkpoint, args.random_init, args.uae_config,
                                  'semantic')
    # after resolution: no checkpoint given means the shipped one, unless --random-init
    random_init = sam_ckpt is None or uae_ckpt is None
    models = [('SAM', _load(args.sam_config, sam_ckpt, args.device, 'SAM')),
              ('UAE-S', _load(args.uae_config, uae_ckpt, args.device, 'UAE'))]
    if not hasattr(models[1][1], 'semantic_head'):
        print(f'note: {args.uae_config} builds no semantic head; UAE-S rows use 2 levels',
              file=sys.stderr)
    t0 = time.perf_counter()
    cases = cross_subject_cases(modality_pairs=(('CT', 'CT'), ), n_pairs=args.pairs,
                                spacing=args.spacing, seed=args.seed)
    print(f'{len(cases)} subject pairs, {sum(len(c.template_points) for c in cases)} '
          f'landmarks, generated in {time.perf_counter() - t0:.1f} s')
    rows, _ = evaluate(models, cases, args.method, not args.no_stable, args.ablate_semantic)
    table = format_table(rows)
    print(table)
    if random_init:
        print('\nWARNING: at least one model is randomly initialised: the errors above mean '
              'nothing; pass --sam-checkpoint and --uae-checkpoint.')
    if args.out:
        with atomic_path(args.out) as tmp, open(tmp, 'w') as f:
            json.dump(dict(rows=rows, args=vars(args), random_init=random_init,
                           cases=[dict(name=c.name, n=len(c.template_points), **c.meta)
                                  for c in cases]), f, indent=2, default=str)
        print(f'wrote {args.out}')
    return rows


if __name__ == '__main__':
    main()
