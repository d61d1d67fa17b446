#!/usr/bin/env python
"""Random init vs MoCo v2 (no Anatomy Decomposer / Purposive Pruner) vs Adam (AD + PP) on
synthetic chest X-rays: Eve's locality and compositionality, and linear-probe mean AUC with
10 % of the labels.

    python tools/analysis/compare_adam.py --moco work_dirs/moco_r18/iter_350.pth \\
        --adam work_dirs/adam_r18/iter_350.pth --out-md work_dirs/adam_comparison.md

Locality / compositionality: :mod:`mmanat.evaluation.eve_properties` on --num-subjects held-out
subjects (seeds from 1000). Linear probe: the frozen backbone's pooled features of the whole
radiograph (resized to the network input, as in
configs/adam/benchmarks/r18half_adam-pre_1xb16-linear-cpu-300it_synthetic-cxr-64px.py)
feed one logistic regression per label (standardised features, L2 penalty, L-BFGS: the
optimum of the linear probe, without an SGD schedule to tune); trained on --label-fraction of
--train-pool subjects (seeds from 10000), scored by mean ROC AUC on --test-subjects (seeds from
20000). Every model sees the same images; the random-init model uses --seed.
"""
import argparse
import json
import os.path as osp
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

import numpy as np  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0].replace('\n', ' '),
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('--config', default=osp.join(
        ROOT, 'configs', 'adam', 'adam_r18half-mlp_1xb32-cpu-350it_synthetic-cxr-64px.py'),
                   help='model config of all three (the checkpoints must fit it)')
    p.add_argument('--moco', required=True, help='MoCo v2 checkpoint (no AD / PP)')
    p.add_argument('--adam', default=None,
                   help='Adam checkpoint (AD + PP); default: checkpoints/adam_default.pth')
    p.add_argument('--num-subjects', type=int, default=8, help='Eve property subjects')
    p.add_argument('--patch-size', type=int, default=24)
    p.add_argument('--regions', type=int, default=8)
    p.add_argument('--train-pool', type=int, default=400)
    p.add_argument('--label-fraction', type=float, default=0.1)
    p.add_argument('--test-subjects', type=int, default=100)
    p.add_argument('--l2', type=float, default=1.0, help='logistic regression L2 weight')
    p.add_argument('--cache-dir', default=osp.join('data', 'synthetic_xray_cache'))
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--device', default=None)
    p.add_argument('--out-md', default=None, help='also write the table as markdown')
    p.add_argument('--out-json', default=None)
    return p.parse_args(argv)


def pooled_features(model, images, size, mean, std, channels, batch=32):
    """Frozen pooled backbone features ``(N, C)`` of whole radiographs."""
    import torch

    from mmanat.apis.eve import resize_batch
    from mmanat.datasets.transforms.two_view_xray_augment import to_network_input
    from mmanat.utils.device import model_device
    dev = model_device(model)
    out = []
    with torch.no_grad():
        for i in range(0, len(images), batch):
            x = torch.stack([torch.from_numpy(to_network_input(im, mean, std, channels))
                             for im in images[i:i + batch]])
            x = resize_batch(x, size).to(dev)
            out.append(model.extract_feat(x).float().cpu().numpy())
    return np.concatenate(out)


def linear_probe_auc(f_train, y_train, f_test, y_test, l2=1.0, classes=None):
    """Per-label logistic regression on standardised features; mean AUC on the test set."""
    import torch

    from mmanat.evaluation.metrics import mean_auc
    mu, sd = f_train.mean(0), f_train.std(0) + 1e-6
    xtr = torch.as_tensor((f_train - mu) / sd, dtype=torch.float64)
    xte = torch.as_tensor((f_test - mu) / sd, dtype=torch.float64)
    ytr = torch.as_tensor(y_train, dtype=torch.float64)
    w = torch.zeros(xtr.shape[1], ytr.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros(ytr.shape[1], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=500, line_search_fn='strong_wolfe')

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(xtr @ w + b, ytr) \
            + l2 * (w ** 2).sum() / len(xtr)
        loss.backward()
        return loss

    opt.step(closure)
    scores = torch.sigmoid(xte @ w + b).detach().numpy()
    return mean_auc(scores, y_test, classes)


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch

    from mmanat.apis import eve_norm_params, init_model
    from mmanat.utils.model_zoo import resolve_checkpoint
    from mmanat.datasets.synthetic_radiograph_dataset import (SYNTHETIC_XRAY_CLASSES,
                                                              SyntheticRadiographDataset)
    from mmanat.evaluation.eve_properties import measure_eve_properties
    t0 = time.perf_counter()
    adam = resolve_checkpoint(args.adam, task='adam')
    xr = dict(spacing=4.0, img_size=96, cache_images=False, cache_dir=args.cache_dir,
              pipeline=[])
    props_ds = SyntheticRadiographDataset(num_samples=args.num_subjects, base_seed=1000, **xr)
    train_ds = SyntheticRadiographDataset(num_samples=args.train_pool, base_seed=10000,
                                          label_fraction=args.label_fraction, **xr)
    test_ds = SyntheticRadiographDataset(num_samples=args.test_subjects, base_seed=20000, **xr)

    def load(ds, what):
        from tqdm import tqdm
        items = [ds.render(ds.get_data_info(i)['seed'])
                 for i in tqdm(range(len(ds)), desc=what, unit='img')]
        return [it['img'] for it in items], np.stack([it['gt_label'] for it in items])

    tr_img, tr_y = load(train_ds, f'probe train ({len(train_ds)})')
    te_img, te_y = load(test_ds, f'probe test ({len(test_ds)})')
    rows = []
    for name, ckpt in (('random init', None), ('MoCo v2 (no AD/PP)', args.moco),
                       ('Adam (AD + PP)', adam)):
        torch.manual_seed(args.seed)
        model = init_model(args.config, ckpt, device=args.device)
        norm = eve_norm_params(getattr(model, 'cfg', None))
        res, _ = measure_eve_properties(model, props_ds, args.patch_size, args.regions,
                                        seed=args.seed, size=norm['size'], mean=norm['mean'],
                                        std=norm['std'], channels=norm['channels'])
        kw = dict(size=norm['size'], mean=norm['mean'], std=norm['std'],
                  channels=norm['channels'])
        auc = linear_probe_auc(pooled_features(model, tr_img, **kw), tr_y,
                               pooled_features(model, te_img, **kw), te_y, args.l2,
                               SYNTHETIC_XRAY_CLASSES)
        rows.append(dict(model=name, checkpoint=ckpt, **{k: v for k, v in res.items()
                                                          if k != 'locality_per_landmark'},
                         probe=auc))
        print(f'{name}: locality {res["locality_top1"]:.3f}, comp gap {res["comp_gap"]:.4f}, '
              f'mAUC {auc["mAUC"]:.3f}', flush=True)
    head = ('| model | locality top-1 | chance | comp. cos quadrants | comp. cos random | '
            f'comp. gap | linear probe mAUC ({args.label_fraction:.0%} labels) | ' + ' | '.join(
                f'AUC {c}' for c in SYNTHETIC_XRAY_CLASSES) + ' |')
    lines = [head, '|' + '---|' * (7 + len(SYNTHETIC_XRAY_CLASSES))]
    for r in rows:
        a = r['probe']
        lines.append(f'| {r["model"]} | {r["locality_top1"]:.3f} | {r["locality_chance"]:.3f} '
                     f'| {r["comp_quadrants"]:.4f} | {r["comp_random"]:.4f} | '
                     f'{r["comp_gap"]:.4f} | {a["mAUC"]:.3f} | ' + ' | '.join(
                         f'{a["AUC/" + c]:.3f}' for c in SYNTHETIC_XRAY_CLASSES) + ' |')
    n_tr = len(train_ds)
    foot = (f'{args.num_subjects} subjects for locality/compositionality '
            f'({rows[0]["locality_queries"]} landmark queries, patch {args.patch_size} px); '
            f'linear probe on {n_tr} labelled '
            f'images ({args.label_fraction:.0%} of {args.train_pool}), mean AUC on '
            f'{len(test_ds)} test images; {time.perf_counter() - t0:.0f} s.')
    print('\n' + '\n'.join(lines) + '\n\n' + foot)
    from mmanat.fileio import atomic_path
    if args.out_md:
        with atomic_path(args.out_md) as tmp, open(tmp, 'w', encoding='utf-8') as fh:
            fh.write('\n'.join(lines) + '\n\n' + foot + '\n')
    if args.out_json:
        with atomic_path(args.out_json) as tmp, open(tmp, 'w') as fh:
            json.dump(rows, fh, indent=1, default=str)
    return 0


if __name__ == '__main__':
    sys.exit(main())
