#!/usr/bin/env python
"""Dense matching budget: how many target voxels a search must score per point to agree with
the exhaustive search, and what that costs at best on this machine.

For ``--points`` body points of ``--image`` matched into ``--target-image`` with one model:

1. one embedding of the target is timed (median of ``--rounds``; the default ``embed`` path);
2. the exhaustive answer of every point is computed, and its rank under three orderings of
   the target (:func:`mmanat.evaluation.dense_matching.answer_ranks`): the coarse term alone,
   the level-1 block score of ``coarse_to_fine`` (topk x window voxels), the fine term alone
   (an oracle: computing it is the exhaustive search);
3. the rate of the exhaustive search's dense matrix products is measured
   (:func:`mmanat.evaluation.dense_matching.score_rate`): the best case for scoring any
   candidate set;
4. the table gives, for each ordering and share of points, the candidate voxels per point
   that hold the exhaustive answer, and the time that scoring that many candidates for
   ``--budget-points`` points would take at the dense rate, as a multiple of one embedding.
   This is a lower bound: it leaves out computing the ordering itself, gathering scattered
   candidates, and the query embeddings.

A figure (``--out-fig``) shows the share of points whose answer is held against candidate
voxels per point, with the budget (``--budget`` x one embedding) marked.

Example (the numbers of docs/en/advanced_guides/dense_matching.md)::

    OMP_NUM_THREADS=2 python tools/analysis/dense_matching_budget.py \\
        --checkpoint checkpoints/sam_default.pth --points 2000 \\
        --out-fig work_dirs/dense_matching_budget.png
"""
import argparse
import json
import os.path as osp
import statistics
import sys
import time
import warnings

import numpy as np

SHARES = (0.5, 0.9, 0.95, 0.99)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--config', default=None,
                   help='model config (default: the one stored in the checkpoint)')
    p.add_argument('--checkpoint', default='checkpoints/sam_default.pth',
                   help='model checkpoint (default: the shipped SAM tiny)')
    p.add_argument('--image', default='data/samples/ct/lung1.nrrd', help='template image')
    p.add_argument('--target-image', default='data/samples/ct/lung2.nrrd',
                   help='target image')
    p.add_argument('--points', type=int, default=2000,
                   help='body points of the template analysed (exhaustive search each)')
    p.add_argument('--budget-points', type=int, default=100000,
                   help='points of the dense task the times are given for')
    p.add_argument('--budget', type=float, default=0.2,
                   help='time budget of the dense task, in embeddings of the target')
    p.add_argument('--pool', type=int, nargs=3, default=[2, 2, 2],
                   help='block size (z y x fine voxels) of the coarse-to-fine ordering')
    p.add_argument('--margin', type=int, nargs=3, default=[1, 1, 1],
                   help='fine voxels its windows add around each block (z y x)')
    p.add_argument('--rounds', type=int, default=3, help='timed embeddings (median)')
    p.add_argument('--seed', type=int, default=0, help='seed of the query points')
    p.add_argument('--device', default='cpu', help="'cpu' or 'cuda'")
    p.add_argument('--out', default=None, help='write the numbers as JSON here')
    p.add_argument('--out-fig', default=None, help='write the containment figure (PNG) here')
    return p.parse_args(argv)


def plot(ranks, budget_voxels, out_fig, title):
    """Share of points whose exhaustive answer lies within the first K voxels of each
    ordering, against K (log scale)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    curves = (('coarse term alone', ranks['rank_coarse']),
              ('coarse-to-fine level 1 (topk x window)', ranks['topk'] * ranks['window']),
              ('fine term alone (oracle)', ranks['rank_fine']))
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    for name, v in curves:
        x = np.sort(v)
        ax.step(x, np.arange(1, len(x) + 1) / len(x), where='post', label=name)
    ax.axvline(budget_voxels, color='k', ls='--', lw=1,
               label=f'budget: {budget_voxels:,.0f} voxels per point')
    ax.axhline(0.99, color='grey', ls=':', lw=1, label='99 % of points')
    ax.set_xscale('log')
    ax.set_xlim(1, ranks['valid'])
    ax.set_ylim(0, 1.01)
    ax.set_xlabel('candidate voxels scored per point (log)')
    ax.set_ylabel('share of points whose exhaustive answer is among them')
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8, loc='lower right')
    ax.grid(alpha=0.3, which='both')
    fig.tight_layout()
    fig.savefig(out_fig)
    plt.close(fig)


def main(argv=None) -> int:
    args = parse_args(argv)
    warnings.simplefilter('ignore', UserWarning)
    import torch

    from mmanat.apis import embed, init_model, preprocess_image
    from mmanat.cli.benchmark_inference import body_points  # its query points
    from mmanat.evaluation.dense_matching import answer_ranks, containment_table, score_rate
    from mmanat.fileio import read_volume

    model = init_model(args.config, args.checkpoint, device=args.device,
                       expect='3d-embedding', user='tools/analysis/dense_matching_budget.py')
    device = next(model.parameters()).device
    image, target = read_volume(args.image), read_volume(args.target_image)
    t_pre = preprocess_image(target)
    tmaps = embed(model, t_pre)  # warm-up
    times = []
    for _ in range(max(1, args.rounds)):
        if device.type == 'cuda':
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        tmaps = embed(model, t_pre)
        if device.type == 'cuda':
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    t_emb = statistics.median(times)
    maps = embed(model, preprocess_image(image))
    rate = score_rate(tmaps, maps, device=device)
    pts = body_points(image, args.points, np.random.default_rng(args.seed))
    t0 = time.perf_counter()
    ranks = answer_ranks(maps, tmaps, pts, pool=args.pool, margin=args.margin, device=device)
    t_ranks = time.perf_counter() - t0
    tab = containment_table(ranks, SHARES)
    budget_s = args.budget * t_emb
    budget_voxels = budget_s * rate / args.budget_points

    print(f'model {model.mmanat_identity["config"]} on {device}, torch threads '
          f'{torch.get_num_threads()}; {args.image} -> {args.target_image}')
    print(f'one embedding of the target: {t_emb:.3f} s (median of {len(times)}: '
          + ' '.join(f'{t:.3f}' for t in times) + ')')
    print(f'target: {ranks["valid"]:,} candidate fine voxels; dense scoring rate '
          f'{rate / 1e9:.2f}e9 scores/s (exhaustive search of {args.points} points: '
          f'{t_ranks:.1f} s with the rank bookkeeping)')
    print(f'budget: {args.budget} x one embedding = {budget_s:.3f} s for '
          f'{args.budget_points:,} points = at most {budget_voxels:,.0f} voxels scored per '
          f'point at the dense rate')
    gap = ranks['gap']
    print('gap between the best and second-best similarity: '
          + ', '.join(f'{int(q * 100)}th pct {np.quantile(gap, q):.4f}'
                      for q in (0.1, 0.5, 0.9)))
    print(f'\ncandidate voxels per point that hold the exhaustive answer, and the time to '
          f'score them for {args.budget_points:,} points at the dense rate (x one embedding)')
    head = ' | '.join(f'{int(s * 100)} % of points' for s in SHARES)
    print(f'| ordering | {head} |')
    print('| --- |' + ' --- |' * len(SHARES))
    names = dict(coarse='coarse term alone',
                 coarse_to_fine=f'coarse-to-fine level 1 (pool {"x".join(map(str, args.pool))}'
                 f', window {ranks["window"]} voxels)',
                 fine='fine term alone (oracle)')
    rows = {}
    for key, name in names.items():
        cells = []
        for k in tab[key]:
            t = args.budget_points * k / rate
            cells.append(f'{k:,} ({t / t_emb:.2f}x)')
        rows[key] = [dict(voxels=k, seconds=args.budget_points * k / rate) for k in tab[key]]
        print(f'| {name} | ' + ' | '.join(cells) + ' |')
    blocks = int(np.prod([-(-n // p) for n, p in zip(tmaps.fine.shape[1:], args.pool)]))
    t_level1 = args.budget_points * blocks / rate
    print(f'\ncomputing the coarse-to-fine ordering itself (level 1: {blocks:,} blocks scored '
          f'per point) for {args.budget_points:,} points at the dense rate: {t_level1:.2f} s '
          f'({t_level1 / t_emb:.2f}x one embedding)')
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(dict(embedding_s=times, score_rate=rate, valid=ranks['valid'],
                           window=ranks['window'], shares=SHARES, budget=args.budget,
                           budget_points=args.budget_points, budget_voxels=budget_voxels,
                           gap_quantiles={q: float(np.quantile(gap, q))
                                          for q in (0.1, 0.5, 0.9)},
                           level1_blocks=blocks, level1_seconds=t_level1,
                           orderings=rows), f, indent=1)
        print(f'numbers: {args.out}')
    if args.out_fig:
        plot(ranks, budget_voxels, args.out_fig,
             f'{osp.basename(args.image)} -> {osp.basename(args.target_image)}, '
             f'{args.points} points, {model.mmanat_identity["config"]}')
        print(f'figure: {args.out_fig}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
