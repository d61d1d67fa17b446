#!/usr/bin/env python
"""Training speed and peak memory of a config: iterations/s of the real train step
(data loading included) and peak memory, on CPU or GPU.

    python tools/benchmarks/bench_train.py \
        configs/sam/sam_tiny-fpn3d_1xb2-cpu-300it_synthetic-ct.py --iters 10
    python tools/benchmarks/bench_train.py configs/sam/sam_r18-fpn3d_8xb6-20k_ct-2mm.py \
        --device cuda --amp \
        --cfg-options train_dataloader.dataset.data_root=data/ct_cache

    # the shipped SAM recipe, today's pipeline against the optimised one, side by side
    python tools/benchmarks/bench_train.py \
        configs/sam/sam_tiny-fpn3d_1xb2-cpu-1000it_synthetic-ct-samples.py \
        --compare --rounds 4 --block 3

The first ``--warmup`` iterations are excluded from the timing. Prints one table row per
run, the time per phase (data wait, network forward, pair samplers, rest of the loss,
backward, optimiser step; wall and CPU seconds of this process) and the loss at the start
and the end of the run.

``--compare`` builds two copies of the setup from the same config and seed and times them in
alternating blocks of ``--block`` iterations (so that load from other jobs on the machine
hits both alike): *baseline* = the pipeline as it was before the speed-ups
(:func:`strip_speedups`: synthetic subjects generated for every item, no disk cache;
contiguous NCDHW float32 network; the run's threads) and *optimised* = the config as written
(e.g. ``cache_dir``, ``channels_last``, ``cpu_bf16``, ``env_cfg.torch_threads``). Torch
threads are set before every step of a variant: ``env_cfg.torch_threads`` when its config
has one (what ``tools/train.py`` applies), else ``--threads`` or the torch default. The cache
entries of the subjects the timed iterations draw are generated first, outside the timing,
i.e. the optimised column is the steady state of a long run. While one variant runs, the
dataloader workers of the other are paused (SIGSTOP), so neither prefetches in the other's
time. ``CPU s/it`` counts every
process of the setup (main process and its dataloader workers), a measure that contention
by other jobs barely changes.
"""
import argparse
import copy
import itertools
import os
import os.path as osp
import resource
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PHASES = ('data', 'forward', 'samplers', 'loss_rest', 'backward', 'optim')


def _cpu_seconds(pids=()):
    """CPU seconds (user + system) of this process and of the processes ``pids``."""
    total = time.process_time()
    tick = os.sysconf('SC_CLK_TCK')
    for pid in pids:
        try:
            with open(f'/proc/{pid}/stat') as f:
                fields = f.read().rsplit(')', 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
        except (OSError, IndexError, ValueError):
            pass
    return total


def strip_speedups(cfg):
    """The config as the pipeline was before the speed-ups: no synthetic-subject cache
    (anywhere in the dataset tree), the network in the contiguous memory format and in
    float32 (``channels_last`` and ``cpu_bf16`` off), the torch default number of threads
    (``env_cfg.torch_threads`` removed)."""
    cfg = copy.deepcopy(cfg)

    def walk(node):
        if isinstance(node, dict):
            if node.get('type') == 'SyntheticSubjectDataset':
                node['cache_dir'] = None
            for v in node.values():
                walk(v)
        elif isinstance(node, (list, tuple)):
            for v in node:
                walk(v)

    walk(cfg.train_dataloader)
    for key in ('channels_last', 'cpu_bf16'):
        if key in cfg.model:
            cfg.model[key] = False
    if cfg.get('env_cfg') and 'torch_threads' in cfg.env_cfg:
        cfg.env_cfg.torch_threads = None
    return cfg


def _resolve(dataset, idx):
    """(leaf dataset, index) of item ``idx`` through Concat/Repeat dataset wrappers."""
    from mmengine.dataset import ConcatDataset, RepeatDataset
    while isinstance(dataset, (ConcatDataset, RepeatDataset)):
        if isinstance(dataset, ConcatDataset):
            d, idx = dataset._get_ori_dataset_idx(idx)
            dataset = dataset.datasets[d]
        else:
            idx = dataset._get_ori_dataset_idx(idx)
            dataset = dataset.dataset
    return dataset, idx


def warm_synthetic_cache(loader, num_items):
    """Generate (into the cache) the synthetic subjects of the first ``num_items`` indices
    of the loader's sampler. Returns how many items were synthetic with a cache."""
    from mmanat.datasets.synthetic_dataset import SyntheticSubjectDataset
    n = 0
    sampler = loader.sampler
    # a twin sampler: iterating the loader's own InfiniteSampler here would close its
    # shared index generator; same class, dataset, shuffle and seed give the same indices
    twin = type(sampler)(loader.dataset, shuffle=sampler.shuffle, seed=sampler.seed)
    for idx in itertools.islice(iter(twin), num_items):
        ds, i = _resolve(loader.dataset, idx)
        if isinstance(ds, SyntheticSubjectDataset) and ds.cache_dir:
            ds.build_sample(ds.get_data_info(i))
            n += 1
    return n


class Setup:
    """Model, data iterator and optimiser of one variant, with per-phase timers."""

    def __init__(self, cfg, device, name, default_threads=None):
        import torch
        from mmengine.registry import DefaultScope
        from mmengine.runner import Runner
        self.name, self.device, self.cfg = name, device, cfg
        with DefaultScope.overwrite_default_scope('mmanat'):
            from mmanat.registry import MODELS
            torch.manual_seed(0)
            self.model = MODELS.build(cfg.model).to(device)
            self.loader = Runner.build_dataloader(cfg.train_dataloader, seed=0)
        self.optim = torch.optim.SGD(self.model.parameters(),
                                     lr=cfg.optim_wrapper.optimizer.lr, momentum=0.9)
        self.model.train()
        # env_cfg.torch_threads (what tools/train.py applies), else the run's default
        self.threads = (cfg.get('env_cfg') or {}).get('torch_threads') or default_threads
        self.iterator = None
        # wall, cpu (this process); loss_call = preprocessor + the whole loss call
        self.phase = {p: [0.0, 0.0] for p in PHASES + ('loss_call', )}
        self.times, self.data_times, self.cpus, self.losses = [], [], [], []
        self._wrap_phases()

    def _wrap_phases(self):
        model = self.model

        def timed(fn, key):
            def call(*args, **kwargs):
                w, c = time.perf_counter(), time.process_time()
                out = fn(*args, **kwargs)
                self._add(key, w, c)
                return out
            return call

        model.extract_feat = timed(model.extract_feat, 'forward')
        if hasattr(model, 'fine_sampler') and hasattr(model, 'coarse_sampler'):
            model.fine_sampler = timed(model.fine_sampler, 'samplers')
            model.coarse_sampler = timed(model.coarse_sampler, 'samplers')

    def _add(self, key, w, c):
        self.phase[key][0] += time.perf_counter() - w
        self.phase[key][1] += time.process_time() - c

    def worker_pids(self):
        it = self.iterator
        return [w.pid for w in getattr(it, '_workers', [])] if it is not None else []

    def pause_workers(self, pause):
        """SIGSTOP (``pause``) or SIGCONT this setup's dataloader workers, so that the
        other variant's block is not slowed by their prefetching (and this variant gets no
        batches prepared in the other's time)."""
        import signal
        for pid in self.worker_pids():
            try:
                os.kill(pid, signal.SIGSTOP if pause else signal.SIGCONT)
            except OSError:
                pass

    def step(self, record, amp_scaler=None):
        """One training iteration; ``record``: add its times to the statistics."""
        import torch
        if self.threads:
            torch.set_num_threads(self.threads)
        if self.iterator is None:
            self.iterator = iter(self.loader)
        before = {k: list(v) for k, v in self.phase.items()}
        cpu0 = _cpu_seconds(self.worker_pids())
        t0, c0 = time.perf_counter(), time.process_time()
        batch = next(self.iterator)
        self._add('data', t0, c0)
        t1 = time.perf_counter()
        with torch.autocast(device_type=self.device.split(':')[0], dtype=torch.float16,
                            enabled=amp_scaler is not None):
            w, c = time.perf_counter(), time.process_time()
            data = self.model.data_preprocessor(batch, True)
            loss = sum(self.model(**data, mode='loss').values())
            self._add('loss_call', w, c)
        w, c = time.perf_counter(), time.process_time()
        self.optim.zero_grad()
        if amp_scaler is not None:
            amp_scaler.scale(loss).backward()
        else:
            loss.backward()
        self._add('backward', w, c)
        w, c = time.perf_counter(), time.process_time()
        if amp_scaler is not None:
            amp_scaler.step(self.optim)
            amp_scaler.update()
        else:
            self.optim.step()
        if self.device.startswith('cuda'):
            torch.cuda.synchronize()
        self._add('optim', w, c)
        t2 = time.perf_counter()
        cpu = _cpu_seconds(self.worker_pids()) - cpu0
        self.losses.append(float(loss.detach()))
        if record:
            self.times.append(t2 - t0)
            self.data_times.append(t1 - t0)
            self.cpus.append(cpu)
        else:  # warm-up: forget its phase times
            self.phase = before
        return t2 - t0, t1 - t0, cpu

    def summary(self):
        n = max(len(self.times), 1)
        ph = {k: list(v) for k, v in self.phase.items()}
        call = ph.pop('loss_call')  # minus the network forward and the samplers
        ph['loss_rest'] = [call[i] - ph['forward'][i] - ph['samplers'][i] for i in (0, 1)]
        return dict(name=self.name, iters=len(self.times),
                    it_s=len(self.times) / max(sum(self.times), 1e-9),
                    s_it=sum(self.times) / n, data_s=sum(self.data_times) / n,
                    cpu_s=sum(self.cpus) / n,
                    phases={k: (v[0] / n, v[1] / n) for k, v in ph.items()})


def print_report(summaries, config, device, batch_size):
    """Markdown tables: one row per variant, then the phase breakdown."""
    rss_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2
    print()
    print('| config | variant | device | batch | iters | it/s | s/iter | data wait s/iter | '
          'CPU s/iter (all procs) | peak RSS |')
    print('|---|---|---|---|---|---|---|---|---|---|')
    for s in summaries:
        print(f'| {osp.basename(config)} | {s["name"]} | {device} | {batch_size} | '
              f'{s["iters"]} | {s["it_s"]:.3f} | {s["s_it"]:.2f} | {s["data_s"]:.2f} | '
              f'{s["cpu_s"]:.2f} | {rss_gb:.2f} GiB |')
    print()
    print('| phase (s/iter, wall / CPU of the main process) | '
          + ' | '.join(s['name'] for s in summaries) + ' |')
    print('|---|' + '---|' * len(summaries))
    for p in PHASES:
        print(f'| {p} | ' + ' | '.join(
            f'{s["phases"][p][0]:.3f} / {s["phases"][p][1]:.3f}' for s in summaries) + ' |')
    if len(summaries) == 2:
        a, b = summaries
        print(f'\nspeed-up {b["name"]} / {a["name"]}: it/s x{b["it_s"] / a["it_s"]:.2f}, '
              f'CPU s/iter x{a["cpu_s"] / max(b["cpu_s"], 1e-9):.2f}')


def run(args):
    """Build the setup(s) of ``args`` and time them; returns the list of summaries."""
    import torch
    from mmengine.config import Config

    from mmanat.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    if args.threads:
        torch.set_num_threads(args.threads)
    default_threads = torch.get_num_threads()
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    if args.num_workers is not None:
        cfg.train_dataloader.num_workers = args.num_workers
        if args.num_workers == 0:
            cfg.train_dataloader.persistent_workers = False
    device = args.device or ('cuda' if torch.cuda.is_available() else 'cpu')
    scaler = torch.amp.GradScaler('cuda') if (args.amp and device == 'cuda') else None
    if device == 'cuda':
        torch.cuda.reset_peak_memory_stats()
    if not args.compare:
        setups = [Setup(cfg, device, 'config', default_threads)]
        plan = [(setups[0], args.warmup, False), (setups[0], args.iters, True)]
    else:
        setups = [Setup(strip_speedups(cfg), device, 'baseline', default_threads),
                  Setup(cfg, device, 'optimised', default_threads)]
        per_iter = cfg.train_dataloader.batch_size
        prefetch = (cfg.train_dataloader.get('num_workers', 0) or 1) * 2 + 2
        n = warm_synthetic_cache(setups[1].loader, (args.warmup + args.rounds * args.block
                                                    + prefetch) * per_iter)
        print(f'cache warmed for {n} synthetic items (untimed)', flush=True)
        plan = [(s, args.warmup, False) for s in setups]
        for _ in range(args.rounds):
            plan += [(s, args.block, True) for s in setups]
    for setup, count, record in plan:
        for other in setups:  # only the timed variant's workers may run
            other.pause_workers(other is not setup)
        for _ in range(count):
            t, d, c = setup.step(record, scaler)
            print(f'{setup.name:9s} iter {len(setup.losses):4d}  loss {setup.losses[-1]:.4f}  '
                  f'time {t:.3f} s (data {d:.3f} s, CPU {c:.2f} s)'
                  f'{"" if record else "  [warm-up]"}', flush=True)
    for s in setups:
        s.pause_workers(False)
    summaries = [s.summary() for s in setups]
    print_report(summaries, args.config, device + (' amp' if scaler else ''),
                 cfg.train_dataloader.batch_size)
    if device == 'cuda':
        print(f'peak GPU {torch.cuda.max_memory_allocated() / 1024 ** 3:.2f} GiB')
    for s in setups:
        print(f'{s.name}: loss first {s.losses[0]:.4f}, last {s.losses[-1]:.4f}')
    return summaries


def parse_args(argv=None):
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('--iters', type=int, default=10)
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--device', default=None, help='cpu / cuda (default: cuda if present)')
    parser.add_argument('--amp', action='store_true', help='fp16 autocast (GPU)')
    parser.add_argument('--num-workers', type=int, default=None)
    parser.add_argument('--threads', type=int, default=None,
                        help='torch threads of the main process (default: torch default)')
    parser.add_argument('--compare', action='store_true',
                        help='baseline vs optimised pipeline in alternating blocks')
    parser.add_argument('--rounds', type=int, default=3, help='--compare: number of blocks')
    parser.add_argument('--block', type=int, default=3,
                        help='--compare: iterations per block and variant')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args(argv)


def main(argv=None):
    run(parse_args(argv))
    return 0


if __name__ == '__main__':
    sys.exit(main())
