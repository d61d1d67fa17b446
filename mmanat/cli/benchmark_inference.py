"""Inference benchmark on one real CT: embedding time and peak memory, matching time for 1,
1,000 and 100,000 points, reference search vs coarse-to-fine side by side (speed ratio, how
often and how far their answers differ, error on a self-match and on a known shift).

Examples::

    python tools/benchmark_inference.py \\
        --checkpoint work_dirs/sam_r18-fpn3d_8xb6-20k_ct-2mm/iter_20000.pth
    python tools/benchmark_inference.py --config configs/_base_/models/sam_tiny.py  # random
    python tools/benchmark_inference.py --device cuda --max-reference-points 0

Without --checkpoint the model is randomly initialised (a warning says so): the timings are
valid, the accuracy numbers only describe random features. The known-shift case moves the
image by --shift mm (origin change, the voxels are identical), so a perfect matcher answers
query + shift. On a CPU the reference search for 100,000 points takes minutes: counts above
--max-reference-points are timed on that many points and extrapolated (marked ~).
"""
import argparse
import os.path as osp
import resource
import time
import warnings

import numpy as np

from .runner import command

#: the network timed when neither --config nor --checkpoint is given (the reference SAM)
RANDOM_INIT_CONFIG = 'configs/_base_/models/sam_r18_fpn.py'


def parse_args(argv=None):
    """The options of ``mmanat-benchmark-inference``."""
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0].replace('\n', ' '),
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('--config', default=None,
                   help='model config (default: the one stored in --checkpoint; without '
                   f'--checkpoint {RANDOM_INIT_CONFIG}, randomly initialised)')
    p.add_argument('--checkpoint', default=None,
                   help='trained checkpoint (optional; its own config is used unless '
                   '--config)')
    p.add_argument('--image', default=osp.join('data', 'samples', 'ct', 'lung1.nrrd'),
                   help='the CT to embed and match in')
    p.add_argument('--device', default=None, help='cpu / cuda (default: GPU if any)')
    p.add_argument('--points', type=int, nargs='+', default=[1, 1000, 100000],
                   help='numbers of query points')
    p.add_argument('--max-reference-points', type=int, default=5000,
                   help='time the reference search on at most this many points and '
                   'extrapolate linearly above (0: no limit)')
    p.add_argument('--shift', type=float, nargs=3, default=[7.0, -5.0, 3.0],
                   help='known shift (x y z mm) of the second image')
    p.add_argument('--tile-size', type=int, nargs='+', default=None,
                   help='also time tiled embedding with this window (z y x) and report its '
                   'agreement with whole-volume maps')
    p.add_argument('--seed', type=int, default=0, help='seed of the query points and the '
                   'random initialisation')
    return p.parse_args(argv)


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def _sync(device):
    import torch
    if torch.device(device).type == 'cuda':
        torch.cuda.synchronize()


def _body_points(image, n, rng):
    """n random world points inside the body (HU > -300), jittered within their voxel."""
    idx = np.argwhere(image.array > -300)
    if len(idx) == 0:
        idx = np.argwhere(np.ones(image.shape, bool))
    pick = idx[rng.integers(0, len(idx), n)] + rng.uniform(-0.45, 0.45, (n, 3))
    return image.array_index_to_world(pick)


@command
def main(argv=None) -> int:
    """Entry of ``mmanat-benchmark-inference``."""
    args = parse_args(argv)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', UserWarning)
        return benchmark_inference(args)


def benchmark_inference(args) -> int:
    """Run the benchmark of ``args`` (the options of :func:`parse_args`); prints tables."""
    import torch

    from mmanat.apis import embed, init_model, preprocess_image
    from mmanat.apis.matching import Matcher
    from mmanat.fileio import read_volume

    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    config = args.config
    if config is None and args.checkpoint is None:
        from .runner import checkout_root
        config = osp.join(checkout_root(), RANDOM_INIT_CONFIG)
    model = init_model(config, args.checkpoint, device=args.device, expect='3d-embedding',
                       user='tools/benchmark_inference.py')
    device = next(model.parameters()).device
    if args.checkpoint is None:
        print('WARNING: no --checkpoint, randomly initialised model: timings are valid, '
              'accuracy numbers describe random features only (speed-only benchmark).')
    image = read_volume(args.image)
    shift = np.asarray(args.shift, dtype=np.float64)
    moved = image.with_array(image.array, origin=image.origin + shift)
    print(f'model {model.mmanat_identity["config"]} on {device}; image {args.image} '
          f'{image.shape} (z,y,x) {np.round(image.spacing, 3).tolist()} mm; torch threads '
          f'{torch.get_num_threads()}')

    # ------------------------------------------------------------------ embedding
    t0 = time.perf_counter()
    pre = preprocess_image(image)
    t_pre = time.perf_counter() - t0
    if device.type == 'cuda':
        torch.cuda.reset_peak_memory_stats()
    embed(model, pre)  # warm-up (allocator, cudnn autotune)
    _sync(device)
    rss0 = _peak_rss_mb()
    if device.type == 'cuda':
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    maps = embed(model, pre)
    _sync(device)
    t_embed = time.perf_counter() - t0
    gpu_peak = (torch.cuda.max_memory_allocated() / 2**20) if device.type == 'cuda' else None
    maps_moved = embed(model, moved)
    print(f'\nembedding: network input {tuple(pre.shape)} voxels at 2 mm; preprocess '
          f'{t_pre:.2f} s, embed {t_embed:.2f} s (amp={maps.meta["amp"]}); maps '
          f'{maps.nbytes / 2**20:.0f} MB; peak memory: process RSS {_peak_rss_mb():.0f} MB'
          + (f', GPU {gpu_peak:.0f} MB' if gpu_peak is not None else '')
          + (f' (RSS before the timed run {rss0:.0f} MB)' if device.type != 'cuda' else ''))
    if args.tile_size:
        t0 = time.perf_counter()
        tiled = embed(model, pre, tile_size=args.tile_size)
        _sync(device)
        t_tile = time.perf_counter() - t0
        parts = []
        for lv in maps.levels:
            cos = (maps.maps[lv] * tiled.maps[lv]).sum(0).flatten()
            parts.append(f'{lv} cos mean {cos.mean():.4f} / 1st pct '
                         f'{cos.kthvalue(max(1, cos.numel() // 100)).values:.4f} / min '
                         f'{cos.min():.4f}')
        print(f'tiled embedding {tiled.meta["tile_size"]} overlap {tiled.meta["overlap"]}: '
              f'{tiled.meta["tiles"]} tiles, {t_tile:.2f} s; vs whole: ' + '; '.join(parts))

    # ------------------------------------------------------------------ matching
    self_m = Matcher(maps, maps, device)
    shift_m = Matcher(maps, maps_moved, device)
    t0 = time.perf_counter()
    self_m.prepared
    shift_m.prepared
    self_m.prepared.blocks((2, 2, 2))
    shift_m.prepared.blocks((2, 2, 2))
    print(f'target preparation (once per target): {(time.perf_counter() - t0) / 2:.2f} s')
    print('\nN        | reference s | coarse-to-fine s | speed-up | same voxel | dist '
          'ref<->c2f mm (mean/max) | self-match err mm ref / c2f | shift err mm ref / c2f')
    for n in args.points:
        q = _body_points(image, n, rng)
        q_shift_ok = moved.contains_world(q + shift, margin=-2)
        cap = args.max_reference_points
        n_ref = n if cap <= 0 else min(n, cap)
        row = {}
        for method in ('reference', 'coarse_to_fine'):
            nm = n if method == 'coarse_to_fine' else n_ref
            qq = q[:nm]
            _sync(device)
            t0 = time.perf_counter()
            r_self = self_m.match(qq, method=method)
            _sync(device)
            dt = time.perf_counter() - t0
            r_shift = shift_m.match(qq, method=method)
            row[method] = dict(t=dt * n / nm, est=nm < n, self=r_self, shift=r_shift)
        k = n_ref
        a, b = row['reference'], row['coarse_to_fine']
        same = np.mean(np.all(a['self'].extra['grid_points']
                              == b['self'].extra['grid_points'][:k], axis=1))
        dist = np.linalg.norm(a['self'].points - b['self'].points[:k], axis=1)
        e_self = [np.linalg.norm(r['self'].points[:k] - q[:k], axis=1).mean() for r in (a, b)]
        ok = q_shift_ok[:k]
        e_shift = [np.linalg.norm(r['shift'].points[:k][ok] - (q[:k][ok] + shift),
                                  axis=1).mean() if ok.any() else float('nan')
                   for r in (a, b)]
        ref_t = f'{"~" if a["est"] else ""}{a["t"]:.3f}'
        print(f'{n:<8d} | {ref_t:>11s} | {b["t"]:16.3f} | {a["t"] / b["t"]:7.1f}x | '
              f'{100 * same:9.1f}% | {dist.mean():6.2f} / {dist.max():6.2f}'
              f'{"":13s}| {e_self[0]:6.2f} / {e_self[1]:6.2f}{"":15s}| {e_shift[0]:6.2f} / '
              f'{e_shift[1]:6.2f}')
    if any(n > args.max_reference_points > 0 for n in args.points):
        print(f'~ reference time extrapolated from {args.max_reference_points} points; '
              'accuracy columns use those points.')
    print(f'peak process RSS {_peak_rss_mb():.0f} MB'
          + (f', GPU {torch.cuda.max_memory_allocated() / 2**20:.0f} MB'
             if device.type == 'cuda' else ''))
    return 0

