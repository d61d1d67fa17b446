#!/usr/bin/env python
"""Adam v2 vs Adam v1 vs MoCo v2 vs random weights on synthetic chest X-rays, in one table:
Eve locality and compositionality, linear-probe and fine-tuning mean AUC (10 % labels).

    python tools/analysis/compare_adam_v2.py \\
        --moco work_dirs/mocov2_r18half-mlp_1xb32-cpu-350it_synthetic-cxr-64px/iter_350.pth \\
        --out-md work_dirs/adam_v2_comparison.md

Every model is given by its own config and checkpoint (``--model NAME=CONFIG[::CHECKPOINT]``
adds rows; without a checkpoint: random weights, seeded by --seed). The default rows are
random init and MoCo v2 (no AD / PP) with the v1 CPU config, Adam v1 (``--adam-v1``, default
checkpoints/adam_default.pth) and Adam v2 (``--adam-v2`` with the v2 CPU config, default
checkpoints/adam_v2_default.pth); ``''`` skips a row. All share the half-width ResNet-18 and
the 64-pixel input, so only the pre-training differs.

Measures (same images for every model):

* locality / compositionality: :mod:`mmanat.evaluation.eve_properties` on --num-subjects
  held-out subjects (seeds from 1000), as tools/analysis/eve_properties.py;
* linear probe: logistic regression on the frozen pooled features (as
  tools/analysis/compare_adam.py), trained on --label-fraction of --train-pool subjects
  (seeds from 10000), mean ROC AUC on --test-subjects (seeds from 20000);
* fine-tuning: the Eve backbone + a linear layer, all trained with SGD (lr --ft-lr, momentum
  0.9, cosine) for --ft-iters iterations of batch 16 on the same labelled images (BCE), then
  the same AUC; --ft-iters 0 skips it.
"""
import argparse
import copy
import json
import os.path as osp
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))

import numpy as np  # noqa: E402

from compare_adam import linear_probe_auc, pooled_features  # noqa: E402

V1_CFG = osp.join(ROOT, 'configs', 'adam', 'adam_r18half-mlp_1xb32-cpu-350it_synthetic-cxr-64px.py')
V2_CFG = osp.join(ROOT, 'configs', 'adam',
                  'adamv2_r18half-dino_1xb8-cpu-300it_synthetic-cxr-64px.py')


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0].replace('\n', ' '),
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('--moco', default=None, help='MoCo v2 checkpoint (v1 CPU config); row '
                   'skipped when not given')
    p.add_argument('--adam-v1', default=osp.join(ROOT, 'checkpoints', 'adam_default.pth'),
                   help="Adam v1 checkpoint (v1 CPU config); '' skips the row")
    p.add_argument('--adam-v2', default=osp.join(ROOT, 'checkpoints', 'adam_v2_default.pth'),
                   help="Adam v2 checkpoint (v2 CPU config); '' skips the row")
    p.add_argument('--v1-config', default=V1_CFG)
    p.add_argument('--v2-config', default=V2_CFG)
    p.add_argument('--model', action='append', default=[],
                   help='extra row NAME=CONFIG[::CHECKPOINT]')
    p.add_argument('--num-subjects', type=int, default=8)
    p.add_argument('--patch-size', type=int, default=24)
    p.add_argument('--regions', type=int, default=8)
    p.add_argument('--train-pool', type=int, default=400)
    p.add_argument('--label-fraction', type=float, default=0.1)
    p.add_argument('--test-subjects', type=int, default=100)
    p.add_argument('--l2', type=float, default=1.0, help='logistic regression L2 weight')
    p.add_argument('--ft-iters', type=int, default=100, help='fine-tuning iterations (0: skip)')
    p.add_argument('--ft-lr', type=float, default=0.01)
    p.add_argument('--cache-dir', default=osp.join(ROOT, 'data', 'synthetic_xray_cache'))
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--device', default='cpu')
    p.add_argument('--out-md', default=None)
    p.add_argument('--out-json', default=None)
    return p.parse_args(argv)


def fine_tune_auc(model, tr_img, tr_y, te_img, te_y, iters, lr, seed, classes, **norm):
    """Fine-tune ``model.backbone`` (the network of ``extract_feat``) + a linear layer on the
    labelled images; mean AUC of the sigmoid scores on the test images."""
    import torch
    from torch import nn

    from mmanat.apis.eve import resize_batch
    from mmanat.datasets.transforms.two_view_xray_augment import to_network_input
    from mmanat.evaluation.metrics import mean_auc

    def batch(images):
        x = torch.stack([torch.from_numpy(to_network_input(im, norm['mean'], norm['std'],
                                                           norm['channels'])) for im in images])
        return resize_batch(x, norm['size'])

    torch.manual_seed(seed)
    backbone = copy.deepcopy(model.backbone).float()
    for p in backbone.parameters():
        p.requires_grad_(True)
    with torch.no_grad():
        dim = pooled_features(model, tr_img[:2], **norm).shape[1]
    head = nn.Sequential(nn.BatchNorm1d(dim, affine=False), nn.Linear(dim, tr_y.shape[1]))

    def logits(x):
        out = backbone(x)
        f = out[-1] if isinstance(out, (tuple, list)) else out
        return head(f.mean(dim=(2, 3)) if f.dim() == 4 else f.flatten(1))

    params = list(backbone.parameters()) + list(head.parameters())
    opt = torch.optim.SGD(params, lr=lr, momentum=0.9)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(iters, 1))
    x_tr, y_tr = batch(tr_img), torch.as_tensor(tr_y, dtype=torch.float32)
    rng = np.random.default_rng(seed)
    backbone.train()
    head.train()
    for _ in range(iters):
        idx = torch.as_tensor(rng.choice(len(x_tr), size=min(16, len(x_tr)), replace=False))
        loss = nn.functional.binary_cross_entropy_with_logits(logits(x_tr[idx]), y_tr[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    backbone.eval()
    head.eval()
    with torch.no_grad():
        scores = torch.cat([torch.sigmoid(logits(batch(te_img[i:i + 32])))
                            for i in range(0, len(te_img), 32)]).numpy()
    return mean_auc(scores, te_y, classes)


def rows_of(args):
    rows = [('random init', args.v1_config, None)]
    if args.moco:
        rows.append(('MoCo v2 (no AD/PP)', args.v1_config, args.moco))
    if args.adam_v1:
        rows.append(('Adam v1 (AD + PP)', args.v1_config, args.adam_v1))
    if args.adam_v2:
        rows.append(('Adam v2 (loc + comp + dec)', args.v2_config, args.adam_v2))
    for spec in args.model:
        name, _, rest = spec.partition('=')
        cfg, _, ckpt = rest.partition('::')
        rows.append((name, cfg, ckpt or None))
    return rows


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch

    from mmanat.apis import eve_norm_params, init_model
    from mmanat.datasets.synthetic_radiograph_dataset import (SYNTHETIC_XRAY_CLASSES,
                                                              SyntheticRadiographDataset)
    from mmanat.evaluation.eve_properties import measure_eve_properties
    t0 = time.perf_counter()
    xr = dict(spacing=4.0, img_size=96, cache_images=False, cache_dir=args.cache_dir,
              pipeline=[])
    props_ds = SyntheticRadiographDataset(num_samples=args.num_subjects, base_seed=1000, **xr)
    train_ds = SyntheticRadiographDataset(num_samples=args.train_pool, base_seed=10000,
                                          label_fraction=args.label_fraction, **xr)
    test_ds = SyntheticRadiographDataset(num_samples=args.test_subjects, base_seed=20000, **xr)

    def load(ds):
        items = [ds.render(ds.get_data_info(i)['seed']) for i in range(len(ds))]
        return [it['img'] for it in items], np.stack([it['gt_label'] for it in items])

    tr_img, tr_y = load(train_ds)
    te_img, te_y = load(test_ds)
    results = []
    for name, cfg, ckpt in rows_of(args):
        t1 = time.perf_counter()
        torch.manual_seed(args.seed)
        model = init_model(cfg, ckpt, device=args.device)
        norm = eve_norm_params(getattr(model, 'cfg', None))
        res, _ = measure_eve_properties(model, props_ds, args.patch_size, args.regions,
                                        seed=args.seed, size=norm['size'], mean=norm['mean'],
                                        std=norm['std'], channels=norm['channels'],
                                        progress=False)
        kw = dict(size=norm['size'], mean=norm['mean'], std=norm['std'],
                  channels=norm['channels'])
        probe = linear_probe_auc(pooled_features(model, tr_img, **kw), tr_y,
                                 pooled_features(model, te_img, **kw), te_y, args.l2,
                                 SYNTHETIC_XRAY_CLASSES)
        ft = fine_tune_auc(model, tr_img, tr_y, te_img, te_y, args.ft_iters, args.ft_lr,
                           args.seed, SYNTHETIC_XRAY_CLASSES, **kw) if args.ft_iters > 0 \
            else None
        results.append(dict(model=name, config=osp.basename(cfg), checkpoint=ckpt,
                            **{k: v for k, v in res.items() if k != 'locality_per_landmark'},
                            probe=probe, finetune=ft))
        print(f'{name}: locality {res["locality_top1"]:.3f}, comp gap {res["comp_gap"]:.4f}, '
              f'probe mAUC {probe["mAUC"]:.3f}' + (f', fine-tune mAUC {ft["mAUC"]:.3f}'
                                                   if ft else '')
              + f' ({time.perf_counter() - t1:.0f} s)', flush=True)
    frac = f'{args.label_fraction:.0%}'
    lines = [f'| model | locality top-1 | chance | comp. cos quadrants | comp. cos random | '
             f'comp. gap | linear probe mAUC ({frac} labels) | fine-tune mAUC ({frac} labels) |',
             '|---|---|---|---|---|---|---|---|']
    for r in results:
        ft = f'{r["finetune"]["mAUC"]:.3f}' if r['finetune'] else '-'
        lines.append(f'| {r["model"]} | {r["locality_top1"]:.3f} | {r["locality_chance"]:.3f} '
                     f'| {r["comp_quadrants"]:.4f} | {r["comp_random"]:.4f} | '
                     f'{r["comp_gap"]:.4f} | {r["probe"]["mAUC"]:.3f} | {ft} |')
    foot = (f'{args.num_subjects} subjects for locality / compositionality '
            f'({results[0]["locality_queries"]} landmark queries, patch {args.patch_size} px); '
            f'linear probe and fine-tuning ({args.ft_iters} iterations) on {len(train_ds)} '
            f'labelled images ({frac} of {args.train_pool}), mean AUC on {len(test_ds)} test '
            f'images; {time.perf_counter() - t0:.0f} s.')
    print('\n' + '\n'.join(lines) + '\n\n' + foot)
    from mmanat.fileio import atomic_path
    if args.out_md:
        with atomic_path(args.out_md) as tmp, open(tmp, 'w', encoding='utf-8') as fh:
            fh.write('\n'.join(lines) + '\n\n' + foot + '\n')
    if args.out_json:
        with atomic_path(args.out_json) as tmp, open(tmp, 'w') as fh:
            json.dump(results, fh, indent=1, default=str)
    return 0


if __name__ == '__main__':
    sys.exit(main())
