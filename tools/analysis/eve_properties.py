#!/usr/bin/env python
"""Measure Eve's claimed properties (Adam) on synthetic chest X-rays with landmarks.

* Locality: for every ordered pair of subjects (A, B) and every landmark valid in both, the
  patch embedding of A's landmark is matched to its nearest neighbour (cosine) among B's
  landmark patches; top-1 accuracy = how often that is the same landmark. Chance level =
  mean of 1 / (number of B's landmarks).
* Compositionality: for random square regions (side 2 x patch size, inside the image), the
  cosine between the region's embedding and the mean of its 4 quadrant embeddings, against
  the same with 4 random patches (same size as a quadrant) from elsewhere in the image, not
  overlapping the region. Gap = quadrants - random.
* A PCA plot (2D) of the landmark-patch embeddings coloured by landmark (--out-png, default
  ``work_dirs/eve_properties/eve_pca.png`` of the checkout, never the current folder).

Example::

    python tools/analysis/eve_properties.py \\
        --config configs/adam/adam_r18half-mlp_1xb32-cpu-350it_synthetic-cxr-64px.py \\
        --checkpoint adam.pth --num-subjects 8 --out-dir work_dirs/eve_properties

Real radiographs: ``--images DIR --landmarks CSV`` (header ``image,name,column,row``, pixels
of the image files; each image is padded to a square and resized to --img-size) replace the
synthetic subjects::

    python tools/analysis/eve_properties.py --checkpoint adam.pth \\
        --images data/my_xrays --landmarks data/my_xrays/landmarks.csv --img-size 256

Subjects are otherwise the synthetic subjects ``base_seed .. base_seed + N - 1`` (default
seeds start at 1000, outside the training config's seeds 0-127). --random-init gives the
untrained baseline.
"""
import argparse
import json
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

import numpy as np  # noqa: E402

from mmanat.cli.outputs import output_dir, output_file  # noqa: E402
from mmanat.cli.runner import run  # noqa: E402
from mmanat.evaluation.eve_properties import (composition_cosine, locality,  # noqa: E402,F401
                                              measure_eve_properties, region_layout)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0].replace('\n', ' '),
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('--config', default=osp.join(
        ROOT, 'configs', 'adam', 'adam_r18half-mlp_1xb32-cpu-350it_synthetic-cxr-64px.py'))
    g = p.add_mutually_exclusive_group()
    g.add_argument('--checkpoint', default=None, help='trained Adam checkpoint (.pth); '
                   'default: the shipped checkpoints/adam_default.pth')
    g.add_argument('--random-init', action='store_true', help='random weights (baseline)')
    p.add_argument('--num-subjects', type=int, default=6, help='synthetic subjects (>= 2)')
    p.add_argument('--images', default=None,
                   help='folder of real radiographs instead of synthetic subjects (needs '
                   '--landmarks); each is padded to a square and resized to --img-size')
    p.add_argument('--landmarks', default=None,
                   help='CSV image,name,column,row (pixels of the image files) for --images')
    p.add_argument('--base-seed', type=int, default=1000, help='seed of the first subject')
    p.add_argument('--img-size', type=int, default=96, help='radiograph side in pixels')
    p.add_argument('--spacing', type=float, default=4.0, help='synthetic CT voxel size (mm)')
    p.add_argument('--patch-size', type=int, default=24, help='landmark patch side (pixels)')
    p.add_argument('--size', type=int, default=None,
                   help='network input side (default: out_size of the config pipeline)')
    p.add_argument('--regions', type=int, default=8, help='compositionality regions/subject')
    p.add_argument('--seed', type=int, default=0, help='seed of the random regions')
    p.add_argument('--cache-dir', default=None, help='cache folder for rendered radiographs')
    p.add_argument('--out-dir', default=osp.join(ROOT, 'work_dirs', 'eve_properties'),
                   type=output_dir, help='folder of the outputs')
    p.add_argument('--out-png', default=None, type=output_file,
                   help='PCA plot (default: OUT_DIR/eve_pca.png)')
    p.add_argument('--out-json', default=None, type=output_file,
                   help='also write the numbers as JSON')
    p.add_argument('--device', default=None, help='cpu, cuda (default: GPU if any)')
    return p.parse_args(argv)


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
    """Measure and report; errors are one ``error:`` line (exit code 2)."""
    return run(_main, argv)


def _main(argv=None) -> int:
    args = parse_args(argv)
    if args.out_png is None:
        args.out_png = osp.join(args.out_dir, 'eve_pca.png')
    from mmanat.apis import eve_norm_params, init_model
    from mmanat.datasets.synthetic_radiograph_dataset import SyntheticRadiographDataset
    from mmanat.utils.exceptions import InvalidInputError

    if args.num_subjects < 2:
        raise InvalidInputError(f'--num-subjects must be >= 2, got {args.num_subjects}.')
    if args.random_init:
        print('WARNING: random-init weights: these numbers are an untrained baseline, not '
              'Eve.', file=sys.stderr)
    import torch
    torch.manual_seed(args.seed)  # reproducible random-init baseline
    from mmanat.utils.model_zoo import resolve_checkpoint
    args.checkpoint = resolve_checkpoint(args.checkpoint, args.random_init, args.config, 'adam')
    model = init_model(args.config, args.checkpoint, device=args.device, expect='2d-embedding',
                       user='tools/analysis/eve_properties.py')
    norm = eve_norm_params(getattr(model, 'cfg', None))
    size = int(args.size or norm['size'])
    if args.images or args.landmarks:
        if not (args.images and args.landmarks):
            raise InvalidInputError('--images and --landmarks go together (a folder of '
                                    'radiographs and its image,name,column,row CSV).')
        from mmanat.evaluation.eve_folder import LandmarkRadiographFolder
        ds = LandmarkRadiographFolder(args.images, args.landmarks, img_size=args.img_size)
        args.num_subjects = len(ds)
    else:
        ds = SyntheticRadiographDataset(num_samples=args.num_subjects,
                                        base_seed=args.base_seed, spacing=args.spacing,
                                        img_size=args.img_size, cache_images=False,
                                        cache_dir=args.cache_dir, pipeline=[])
    res, (all_e, labels, names) = measure_eve_properties(
        model, ds, args.patch_size, args.regions, seed=args.seed, size=size,
        mean=norm['mean'], std=norm['std'], channels=norm['channels'])
    res = dict(weights='random-init' if args.random_init else osp.basename(args.checkpoint),
               **res)
    pca_plot(all_e, labels, names, args.out_png,
             f'Eve landmark patches ({res["weights"]}, {args.num_subjects} subjects)')
    print(f'\nEve properties on {args.num_subjects} '
          f'{"radiographs of " + args.images if args.images else "synthetic X-rays"} '
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
    sys.exit(main())
