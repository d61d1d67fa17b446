"""Inference benchmark on one real CT: embedding time and peak memory, matching time for 1,
1,000 and 100,000 points, reference search vs coarse-to-fine side by side (speed ratio, how
often and how far their answers differ, error on a self-match and on a known shift), and,
with the default image, its points matched into a second CT (--target-image, lung2): each
search's time as a multiple of one embedding of that CT in the same run and its agreement
with the exhaustive search (docs/en/advanced_guides/dense_matching.md). With
--compare-embedding: the embedding before/after side by side in the same run (the model as
it is vs the optimised default path, and + bf16 on CPU): times, ratios, peak memory and
agreement (docs/en/advanced_guides/tiled_inference.md, "Faster embedding").

Examples::

    python tools/benchmark_inference.py \\
        --checkpoint work_dirs/sam_r18-fpn3d_8xb6-20k_ct-2mm/iter_20000.pth
    python tools/benchmark_inference.py --config configs/_base_/models/sam_tiny.py  # random
    python tools/benchmark_inference.py --device cuda --max-reference-points 0
    python tools/benchmark_inference.py --image data/samples/ct/lung2.nrrd \\
        --compare-embedding --compare-size 160 --compare-only  # full-size SAM, 160^3

Without --checkpoint the model is randomly initialised (a warning says so): the timings are
valid, the accuracy numbers only describe random features. The known-shift case moves the
image by --shift mm (origin change, the voxels are identical), so a perfect matcher answers
query + shift. On a CPU the reference search for 100,000 points takes minutes: counts above
--max-reference-points are timed on that many points and extrapolated (marked ~).
"""
import argparse
import os
import os.path as osp
import resource
import threading
import time
import warnings
from typing import List, Optional

import numpy as np

from .runner import command

#: the network timed when neither --config nor --checkpoint is given (the reference SAM)
RANDOM_INIT_CONFIG = 'configs/_base_/models/sam_r18_fpn.py'
DEFAULT_IMAGE = osp.join('data', 'samples', 'ct', 'lung1.nrrd')
#: the cross-image target with the default image
DEFAULT_TARGET = osp.join('data', 'samples', 'ct', 'lung2.nrrd')


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
    p.add_argument('--image', default=DEFAULT_IMAGE,
                   help='the CT to embed and match in')
    p.add_argument('--device', default=None, help='cpu / cuda (default: GPU if any)')
    p.add_argument('--points', type=int, nargs='+', default=[1, 1000, 100000],
                   help='numbers of query points')
    p.add_argument('--max-reference-points', type=int, default=5000,
                   help='time the reference search on at most this many points and '
                   'extrapolate linearly above (0: no limit)')
    p.add_argument('--shift', type=float, nargs=3, default=[7.0, -5.0, 3.0],
                   help='known shift (x y z mm) of the second image')
    p.add_argument('--target-image', default=None,
                   help='a second CT: --image points are matched into it (cross-image rows, '
                   "timed against one embedding of it; 'none' skips them); default: "
                   f'{DEFAULT_TARGET} with the default --image, else none')
    p.add_argument('--topk', type=int, nargs='+', default=[4],
                   help='candidate blocks of the coarse-to-fine search in the cross-image '
                   'rows: one row per value (more blocks: closer to the exhaustive answer, '
                   'slower; tools/analysis/dense_matching_budget.py measures how many each '
                   'share of points needs)')
    p.add_argument('--pool', type=int, nargs=3, default=[2, 2, 2],
                   help='candidate block size (z y x fine voxels) of the coarse-to-fine '
                   'search in the cross-image rows')
    p.add_argument('--tile-size', type=int, nargs='+', default=None,
                   help='also time tiled embedding with this window (z y x) and report its '
                   'agreement with whole-volume maps (with --compare-embedding: also the '
                   'before/after paths tiled, with their peak memory)')
    p.add_argument('--compare-embedding', action='store_true',
                   help='time the embedding before/after side by side in this run: the model '
                   'as it is (embed optimize=False) vs the optimised inference copy (default '
                   'path) and, on CPU, + bf16 autocast; alternating rounds, medians, speed '
                   'ratios, peak memory, agreement of the maps and of 1,000 matches')
    p.add_argument('--compare-size', type=int, default=None,
                   help='with --compare-embedding: pad (with air) / crop the network input '
                   'to this many voxels per axis (e.g. 160: a 160^3 volume at 2 mm)')
    p.add_argument('--rounds', type=int, default=3,
                   help='with --compare-embedding: timed rounds per path (median reported)')
    p.add_argument('--compare-only', action='store_true',
                   help='with --compare-embedding: stop after the comparison')
    p.add_argument('--seed', type=int, default=0, help='seed of the query points and the '
                   'random initialisation')
    return p.parse_args(argv)


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def _sync(device):
    import torch
    if torch.device(device).type == 'cuda':
        torch.cuda.synchronize()


def body_points(image, n, rng):
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

    if args.compare_embedding:
        rows = compare_embedding(model, image, device, rounds=args.rounds,
                                 size=args.compare_size, seed=args.seed,
                                 tile_size=args.tile_size)
        print_comparison(rows, args)
        if args.compare_only:
            return 0

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
        q = body_points(image, n, rng)
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
    if args.target_image is None and args.image == DEFAULT_IMAGE:
        args.target_image = DEFAULT_TARGET
    if args.target_image and args.target_image.lower() != 'none':
        cross_image_rows(args, model, image, maps, device, rng)
    print(f'peak process RSS {_peak_rss_mb():.0f} MB'
          + (f', GPU {torch.cuda.max_memory_allocated() / 2**20:.0f} MB'
             if device.type == 'cuda' else ''))
    return 0


def agreement(ref, other, k: int):
    """How the first ``k`` answers of ``other`` (a :class:`MatchResult`) agree with the
    exhaustive ``ref``: the fraction on the same fine voxel and the distances (mm) between
    the refined answers of those that differ."""
    same = np.all(ref.extra['grid_points'][:k] == other.extra['grid_points'][:k], axis=1)
    dist = np.linalg.norm(ref.points[:k] - other.points[:k], axis=1)[~same]
    return float(np.mean(same)), dist


def cross_image_rows(args, model, image, maps, device, rng) -> None:
    """Points of ``image`` matched into ``args.target_image``: each search's time as a
    multiple of one (timed) embedding of the target, and its agreement with the exhaustive
    (``'reference'``) search on up to ``--max-reference-points`` of them."""
    from mmanat.apis import embed, preprocess_image
    from mmanat.apis.matching import Matcher
    from mmanat.fileio import read_volume

    target = read_volume(args.target_image)
    pre = preprocess_image(target)
    _sync(device)
    t0 = time.perf_counter()
    tmaps = embed(model, pre)
    _sync(device)
    t_emb = time.perf_counter() - t0
    m = Matcher(maps, tmaps, device)
    t0 = time.perf_counter()
    pool = tuple(int(v) for v in args.pool)
    m.prepared.blocks(pool)
    t_prep = time.perf_counter() - t0
    print(f'\ncross-image: {args.image} points into {args.target_image} '
          f'{tuple(pre.shape)} input voxels; one embedding of the target {t_emb:.2f} s, '
          f'target preparation {t_prep:.2f} s (once per target)')
    print(f'N        | {"method":33s} | time s     | x embedding | same voxel as exhaustive '
          '| dist of the others mm (mean/max)')
    # one row per search: the exhaustive one, then coarse-to-fine per --topk value
    tag = '' if pool == (2, 2, 2) else f' pool {"x".join(map(str, pool))}'
    runs = [('reference', 'reference', 4)] + [
        ('coarse_to_fine' + (f' topk {k}' if list(args.topk) != [4] else '') + tag,
         'coarse_to_fine', int(k)) for k in args.topk]
    for n in args.points:
        q = body_points(image, n, rng)
        cap = args.max_reference_points
        n_ref = n if cap <= 0 else min(n, cap)
        res = {}
        for name, method, k in runs:
            nm = n_ref if method == 'reference' else n
            _sync(device)
            t0 = time.perf_counter()
            r = m.match(q[:nm], method=method, topk=k, pool=pool)
            _sync(device)
            res[name] = (r, (time.perf_counter() - t0) * n / nm, nm < n)
        for method, (r, dt, est) in res.items():
            frac, dist = agreement(res['reference'][0], r, n_ref)
            d = f'{dist.mean():6.2f} / {dist.max():6.2f}' if len(dist) else '     - / -'
            t = f'{"~" if est else ""}{dt:.3f}'
            print(f'{n:<8d} | {method:33s} | {t:>10s} | {dt / t_emb:10.2f}x | '
                  f'{100 * frac:23.1f}% | {d}')


# ---------------------------------------------------------------- before / after embedding
#: the paths --compare-embedding times: (name, embed keyword arguments, CPU only)
EMBED_PATHS = (('before: model as is', dict(optimize=False), False),
               ('after: optimised (default)', dict(), False),
               ('after + cpu_bf16', dict(cpu_bf16=True), True))


class PeakMemory:
    """Peak memory of a block above its start: process RSS sampled every 2 ms from
    /proc/self/statm (CPU), or ``torch.cuda.max_memory_allocated`` (GPU). ``mb`` after the
    block; ``None`` where neither is available."""

    def __init__(self, device):
        import torch
        self.cuda = torch.device(device).type == 'cuda'
        self.mb = None

    @staticmethod
    def _rss() -> Optional[int]:
        try:
            with open('/proc/self/statm') as f:
                return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE')
        except (OSError, ValueError, IndexError):
            return None

    def __enter__(self):
        import torch
        if self.cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self._start = torch.cuda.memory_allocated()
            return self
        self._start = self._rss()
        self._peak = self._start
        self._stop = threading.Event()

        def poll():
            while not self._stop.wait(0.002):
                r = self._rss()
                if r is not None and r > self._peak:
                    self._peak = r
        if self._start is not None:
            self._thread = threading.Thread(target=poll, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc):
        import torch
        if self.cuda:
            torch.cuda.synchronize()
            self.mb = (torch.cuda.max_memory_allocated() - self._start) / 2**20
        elif self._start is not None:
            self._stop.set()
            self._thread.join()
            r = self._rss()
            self.mb = (max(self._peak, r or 0) - self._start) / 2**20
        return False


def fit_input(pre, size: int):
    """The preprocessed image ``pre`` cut or padded (with its air value, at the end of each
    axis; every kept voxel keeps its world position) to ``size`` voxels per axis; the padding
    counts as image (the network sees a ``size``^3 input)."""
    from mmanat.apis.preprocessing import PREPROCESSED_KEY
    arr = np.asarray(pre.array)[tuple(slice(0, size) for _ in range(3))]
    pad = [(0, max(0, size - n)) for n in arr.shape]
    arr = np.pad(arr, pad, constant_values=pre.meta.get('pad_value', float(arr.min())))
    out = pre.with_array(arr.astype(np.float32))
    out.meta.update({PREPROCESSED_KEY: True, 'unpadded_shape': tuple(arr.shape)})
    return out


def compare_embedding(model, image, device, rounds: int = 3, size: Optional[int] = None,
                      seed: int = 0, points: int = 1000, paths=None,
                      tile_size=None) -> List[dict]:
    """Embed ``image`` with each path of ``EMBED_PATHS`` (``paths``: their names to use)
    side by side: one untimed warm-up each, then ``rounds`` rounds that run every path once
    in turn (so that load from other processes hits all paths alike). With ``tile_size``
    the before and after paths are also run tiled (:func:`mmanat.apis.embed` windows of that
    size, default overlap): their peak memory is the bounded one; their agreement with the
    first (whole-volume) path includes the tiling approximation.

    Agreement with the first path ('before'): max abs difference and min / mean cosine of
    the maps; and ``points`` body points of the image matched (coarse-to-fine search) into the
    same image cropped by (1, 9, 13) of its voxels at the start and preprocessed again (a
    non-trivial target: resampled on a grid offset by a fraction of the network's voxel),
    each path matching its own maps: the fraction on the same fine voxel as the first path's
    answer.

    Returns:
        One dict per path: name, kwargs, times (s), median (s), ratio (first path's median /
        this one's), round_ratio (median over the rounds of the first path's time / this
        one's in the same round: less sensitive to load that changes between rounds),
        peak_mb (peak memory above the start of a run, largest over the runs), max_abs /
        cos_min / cos_mean per level, same_voxel, maps.
    """
    import statistics

    import torch

    from mmanat.apis import embed, preprocess_image
    from mmanat.apis.matching import Matcher
    from mmanat.structures import crop_image

    cpu = torch.device(device).type == 'cpu'
    sel = [p for p in EMBED_PATHS if (cpu or not p[2]) and (paths is None or p[0] in paths)]
    if tile_size:
        ts = [int(v) for v in tile_size]
        sel += [(f'{n.split(":")[0]}, tiled {"x".join(map(str, ts))}',
                 dict(kw, tile_size=ts), c) for n, kw, c in EMBED_PATHS[:2]]
    pre = preprocess_image(image)
    if size:
        pre = fit_input(pre, int(size))
    rows = [dict(name=n, kwargs=kw, times=[], peak_mb=None) for n, kw, _ in sel]
    for row in rows:  # warm-up: allocator, oneDNN kernels, the inference copy
        row['maps'] = embed(model, pre, **row['kwargs'])
    for _ in range(max(1, int(rounds))):
        for row in rows:
            _sync(device)
            with PeakMemory(device) as mem:
                t0 = time.perf_counter()
                embed(model, pre, **row['kwargs'])
                _sync(device)
                row['times'].append(time.perf_counter() - t0)
            if mem.mb is not None:
                row['peak_mb'] = max(row['peak_mb'] or 0.0, mem.mb)
    base = rows[0]
    cut = [min(o, max(0, n - 8)) for o, n in zip((1, 9, 13), image.shape)]
    target = preprocess_image(crop_image(image, tuple(slice(c, None) for c in cut)))
    rng = np.random.default_rng(seed)
    q = body_points(image, points, rng)
    answers = []
    for row in rows:
        row['median'] = statistics.median(row['times'])
        row['ratio'] = statistics.median(base['times']) / row['median']
        row['round_ratio'] = statistics.median(
            [b / t for b, t in zip(base['times'], row['times'])])
        for lv in base['maps'].levels:
            a, b = base['maps'].maps[lv], row['maps'].maps[lv]
            cos = (a * b).sum(0)
            row.setdefault('max_abs', {})[lv] = float((a - b).abs().max())
            row.setdefault('cos_min', {})[lv] = float(cos.min())
            row.setdefault('cos_mean', {})[lv] = float(cos.mean())
        tmaps = embed(model, target, **row['kwargs'])
        answers.append(Matcher(row['maps'], tmaps, device).match(q, method='coarse_to_fine'))
    for row, ans in zip(rows, answers):
        row['same_voxel'] = float(np.mean(np.all(
            ans.extra['grid_points'] == answers[0].extra['grid_points'], axis=1)))
    return rows


def print_comparison(rows: List[dict], args) -> None:
    """The --compare-embedding table (markdown)."""
    import torch
    shape = tuple(rows[0]['maps'].input_grid.shape)
    print(f'\nembedding before/after: network input {shape} voxels, {args.rounds} alternating '
          f'rounds (median), torch threads {torch.get_num_threads()}')
    print('| path | median s | runs s | speed-up (medians) | speed-up (per round, median) '
          '| peak memory MB | max abs diff fine / coarse | cosine min fine / coarse '
          '| same voxel (1,000 matches) |')
    print('| --- | --- | --- | --- | --- | --- | --- | --- | --- |')
    for r in rows:
        mem = '-' if r['peak_mb'] is None else f'{r["peak_mb"]:.0f}'
        print(f'| {r["name"]} | {r["median"]:.2f} | '
              + ' '.join(f'{t:.2f}' for t in r['times'])
              + f' | {r["ratio"]:.2f}x | {r["round_ratio"]:.2f}x | {mem} | '
              f'{r["max_abs"]["fine"]:.1e} / {r["max_abs"]["coarse"]:.1e} | '
              f'{r["cos_min"]["fine"]:.5f} / {r["cos_min"]["coarse"]:.5f} | '
              f'{100 * r["same_voxel"]:.1f}% |')
