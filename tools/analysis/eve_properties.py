#!/usr/bin/env python
"""Measure Eve's claimed properties (SPEC 4) on synthetic chest X-rays with landmarks.

* Locality: for every ordered pair of subjects (A, B) and every landmark valid in both, the
  patch embedding of A's landmark is matched to its nearest neighbour (cosine) among B's
  landmark patches; top-1 accuracy = how often that is the same landmark. Chance level =
  mean of 1 / (number of B's landmarks).
* Compositionality: for random square regions (side 2 x patch size, inside the image), the
  cosine between the region's embedding and the mean of its 4 quadrant embeddings, against
  the same with 4 random patches (same size as a quadrant) from elsewhere in the image, not
  overlapping the region. Gap = quadrants - random.
* A PCA plot (2D) of the landmark-patch embeddings coloured by landmark (--out-png).

Example::

    python tools/analysis/eve_properties.py --config configs/adam/adam_r18_synthetic_cpu.py \\
        --checkpoint adam.pth --num-subjects 8 --out-png eve_pca.png

Subjects are the synthetic subjects ``base_seed .. base_seed + N - 1`` (default seeds start
at 1000, outside the training config's seeds 0-127). --random-init gives the untrained
baseline.
"""
import argparse
import json
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if ROOT not in sys.path:  # allow running from a checkout without installation
    sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0].replace('\n', ' '),
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('--config', default=osp.join(ROOT, 'configs', 'adam',
                                                'adam_r18_synthetic_cpu.py'))
    g = p.add_mutually_exclusive_group()
    g.add_argument('--checkpoint', default=None, help='trained Adam checkpoint (.pth); default: the shipped '
                   'checkpoints/adam_default.pth')
    g.add_argument('--random-init', action='store_true', help='random weights (baseline)')
    p.add_argument('--num-subjects', type=int, default=6)
    p.add_argument('--base-seed', type=int, default=1000)
    p.add_argument('--img-size', type=int, default=96, help='radiograph side in pixels')
    p.add_argument('--spacing', type=float, default=4.0, help='synthetic CT voxel size (mm)')
    p.add_argument('--patch-size', type=int, default=24, help='landmark patch side (pixels)')
    p.add_argument('--size', type=int, default=None,
                   help='network input side (default: out_size of the config pipeline)')
    p.add_argument('--regions', type=int, default=8, help='compositionality regions/subject')
    p.add_argument('--seed', type=int, default=0, help='seed of the random regions')
    p.add_argument('--cache-dir', default=None, help='cache folder for rendered radiographs')
    p.add_argument('--out-png', default='eve_pca.png', help='PCA plot')
    p.add_argument('--out-json', default=None, help='also write the numbers as JSON')
    p.add_argument('--device', default=None)
    return p.parse_args(argv)


def locality(embs, valid, names):
    """Top-1 landmark retrieval across subjects.

    Args:
        embs: per subject ``(L, D)`` unit embeddings of all ``L`` landmarks (rows of invalid
            landmarks are ignored).
        valid: per subject bool ``(L,)``.
        names: the ``L`` landmark names (same order for every subject).

    Returns:
        dict(top1, chance, queries, per_landmark={name: accuracy}).
    """
    hits = np.zeros(len(names))
    counts = np.zeros(len(names))
    chance = []
    for a in range(len(embs)):
        for b in range(len(embs)):
            if a == b:
                continue
            vb = np.flatnonzero(valid[b])
            q = np.flatnonzero(valid[a] & valid[b])
            if len(q) == 0 or len(vb) == 0:
                continue
            sims = embs[a][q] @ embs[b][vb].T  # (Q, |vb|)
            nn = vb[np.argmax(sims, axis=1)]
            np.add.at(hits, q, (nn == q).astype(float))
            np.add.at(counts, q, 1.0)
            chance.append(np.full(len(q), 1.0 / len(vb)))
    n = counts.sum()
    per = {nm: float(h / c) for nm, h, c in zip(names, hits, counts) if c > 0}
    return dict(top1=float(hits.sum() / max(n, 1)),
                chance=float(np.concatenate(chance).mean()) if chance else float('nan'),
                queries=int(n), per_landmark=per)


def region_layout(img_size, patch_size, n_regions, rng):
    """Random regions (side ``2 * patch_size``) inside the image, their 4 quadrant centres and
    4 random non-overlapping part centres (side ``patch_size``), pixel (column, row).

    Returns ``(regions (R, 2), quadrants (R, 4, 2), randoms (R, 4, 2))``."""
    from mmanat.utils.exceptions import InvalidInputError
    side = 2 * patch_size
    lo, hi = side / 2.0 - 0.5, img_size - side / 2.0 - 0.5
    if hi < lo:
        raise InvalidInputError(f'regions of {side} px (2 x --patch-size) do not fit a '
                                f'{img_size} px image; lower --patch-size.')
    reg = rng.uniform(lo, hi, size=(n_regions, 2))
    q = patch_size / 2.0
    quad = reg[:, None, :] + np.array([[-q, -q], [q, -q], [-q, q], [q, q]])[None]
    plo, phi = patch_size / 2.0 - 0.5, img_size - patch_size / 2.0 - 0.5
    cand = rng.uniform(plo, phi, size=(n_regions, 256, 2))
    # a part does not overlap the region when it is >= (side + patch) / 2 away on some axis
    far = np.max(np.abs(cand - reg[:, None, :]), axis=2) >= (side + patch_size) / 2.0
    order = np.argsort(~far, axis=1, kind='stable')[:, :4]  # first 4 far candidates
    if not np.all(np.take_along_axis(far, order, axis=1)):
        raise InvalidInputError('could not place random parts outside a region; use a smaller '
                         '--patch-size or a larger --img-size')
    rnd = np.take_along_axis(cand, order[..., None], axis=1)
    return reg, quad, rnd


def composition_cosine(region_emb, part_embs):
    """Cosine between each region embedding ``(R, D)`` and the mean of its parts
    ``(R, 4, D)``."""
    m = part_embs.mean(axis=1)
    m = m / np.maximum(np.linalg.norm(m, axis=1, keepdims=True), 1e-12)
    return np.sum(region_emb * m, axis=1)


def pca_plot(embs, labels, names, path, title):
    """2D PCA scatter of ``embs`` coloured by ``labels`` (indices into ``names``), saved as
    PNG (atomically)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    from mmanat.fileio import atomic_path
    x = embs - embs.mean(axis=0, keepdims=True)
    _, s, vt = np.linalg.svd(x, full_matrices=False)
    xy = x @ vt[:2].T
    var = (s ** 2) / max(float((s ** 2).sum()), 1e-12)
    cmap = plt.get_cmap('gist_ncar')
    fig, ax = plt.subplots(figsize=(9, 6))
    used = np.unique(labels)
    for k, lab in enumerate(used):
        sel = labels == lab
        ax.scatter(xy[sel, 0], xy[sel, 1], s=14, color=cmap(k / max(len(used), 1)),
                   label=names[lab])
    ax.set_xlabel(f'PC1 ({100 * var[0]:.1f} %)')
    ax.set_ylabel(f'PC2 ({100 * var[1]:.1f} %)' if len(var) > 1 else 'PC2')
    ax.set_title(title)
    ax.legend(fontsize=5, ncol=2, loc='center left', bbox_to_anchor=(1.0, 0.5))
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format='png', dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    args = parse_args(argv)
    from mmanat.apis import eve_embed_patches, eve_norm_params, init_model
    from mmanat.datasets.synthetic_radiograph_dataset import SyntheticRadiographDataset
    from mmanat.utils.exceptions import InvalidInputError

    if args.num_subjects < 2:
        raise InvalidInputError(f'--num-subjects must be >= 2, got {args.num_subjects}.')
    if args.random_init:
        print('WARNING: random-init weights: these numbers are an untrained baseline, not '
              'Eve.', file=sys.stderr)
    import torch
    torch.manual_seed(args.seed)  # reproducible random-init baseline
    from mmanat.apis.model_zoo import resolve_checkpoint
    args.checkpoint = resolve_checkpoint(args.checkpoint, args.random_init, args.config, 'adam')
    model = init_model(args.config, args.checkpoint, device=args.device)
    norm = eve_norm_params(getattr(model, 'cfg', None))
    size = int(args.size or norm['size'])
    kw = dict(mean=norm['mean'], std=norm['std'], channels=norm['channels'])
    ds = SyntheticRadiographDataset(num_samples=args.num_subjects, base_seed=args.base_seed,
                                    spacing=args.spacing, img_size=args.img_size,
                                    cache_images=False, cache_dir=args.cache_dir, pipeline=[])
    rng = np.random.default_rng(args.seed)
    names = None
    embs, valid, quad_cos, rand_cos = [], [], [], []
    from tqdm import tqdm
    for i in tqdm(range(len(ds)), desc='subjects', unit='subject'):
        item = ds.render(ds.get_data_info(i)['seed'])
        img = item['img']
        if names is None:
            names = list(item['landmark_names'])
        elif list(item['landmark_names']) != names:
            raise InvalidInputError('synthetic subjects carry different landmark lists.')
        v = np.asarray(item['landmark_valid'], bool)
        e = np.zeros((len(names), 0), np.float32)
        if v.any():
            ev = eve_embed_patches(model, img, item['landmarks'][v], args.patch_size, size, **kw)
            e = np.zeros((len(names), ev.shape[1]), np.float32)
            e[v] = ev
        embs.append(e)
        valid.append(v)
        reg, quad, rnd = region_layout(img.shape[0], args.patch_size, args.regions, rng)
        r_e = eve_embed_patches(model, img, reg, 2 * args.patch_size, size, **kw)
        parts = eve_embed_patches(model, img, np.concatenate([quad, rnd]).reshape(-1, 2),
                                  args.patch_size, size, **kw).reshape(2, len(reg), 4, -1)
        quad_cos.append(composition_cosine(r_e, parts[0]))
        rand_cos.append(composition_cosine(r_e, parts[1]))
    dim = max(e.shape[1] for e in embs)
    embs = [e if e.shape[1] == dim else np.zeros((len(names), dim), np.float32) for e in embs]
    loc = locality(embs, valid, names)
    qc, rc = np.concatenate(quad_cos), np.concatenate(rand_cos)
    res = dict(weights='random-init' if args.random_init else osp.basename(args.checkpoint),
               subjects=args.num_subjects, patch_size=args.patch_size, input_size=size,
               locality_top1=loc['top1'], locality_chance=loc['chance'],
               locality_queries=loc['queries'],
               comp_quadrants=float(qc.mean()), comp_random=float(rc.mean()),
               comp_gap=float(qc.mean() - rc.mean()), comp_regions=int(len(qc)),
               locality_per_landmark=loc['per_landmark'])
    all_e = np.concatenate([e[v] for e, v in zip(embs, valid)])
    labels = np.concatenate([np.flatnonzero(v) for v in valid])
    pca_plot(all_e, labels, names, args.out_png,
             f'Eve landmark patches ({res["weights"]}, {args.num_subjects} subjects)')
    print(f'\nEve properties on {args.num_subjects} synthetic X-rays '
          f'({args.img_size} px, patch {args.patch_size} px -> {size} px), '
          f'weights: {res["weights"]}')
    print(f'{"metric":<34}{"value":>10}')
    print(f'{"locality top-1 (NN across subj.)":<34}{res["locality_top1"]:>10.3f}')
    print(f'{"  chance level":<34}{res["locality_chance"]:>10.3f}')
    print(f'{"  queries":<34}{res["locality_queries"]:>10d}')
    print(f'{"compositionality cos (quadrants)":<34}{res["comp_quadrants"]:>10.4f}')
    print(f'{"  cos (4 random parts)":<34}{res["comp_random"]:>10.4f}')
    print(f'{"  gap":<34}{res["comp_gap"]:>10.4f}')
    print(f'PCA plot: {args.out_png}')
    if args.out_json:
        from mmanat.fileio import atomic_path
        with atomic_path(args.out_json) as tmp:
            with open(tmp, 'w') as fh:
                json.dump(res, fh, indent=1)
    return 0


if __name__ == '__main__':
    try:
        sys.exit(main())
    except Exception as err:  # noqa: BLE001
        from mmanat.utils.exceptions import InvalidInputError
        if isinstance(err, InvalidInputError):
            print(f'error: {err}', file=sys.stderr)
            sys.exit(2)
        raise
