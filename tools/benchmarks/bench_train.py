#!/usr/bin/env python
"""Training speed and peak memory of a config: iterations/s of the real train step
(data loading included) and peak memory, on CPU or GPU.

    python tools/benchmarks/bench_train.py configs/sam/sam_tiny_synthetic_cpu.py --iters 10
    python tools/benchmarks/bench_train.py configs/sam/sam_r18_fpn_ct.py --device cuda --amp \
        --cfg-options train_dataloader.dataset.data_root=data/ct_cache

The first ``--warmup`` iterations are excluded from the timing. Prints one table row per
phase and the loss at the start and the end of the run.
"""
import argparse
import os.path as osp
import resource
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


def main(argv=None):
    from mmengine.config import Config, DictAction
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('--iters', type=int, default=10)
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--device', default=None, help='cpu / cuda (default: cuda if present)')
    parser.add_argument('--amp', action='store_true', help='fp16 autocast (GPU)')
    parser.add_argument('--num-workers', type=int, default=None)
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = parser.parse_args(argv)

    import torch
    from mmengine.registry import DefaultScope
    from mmengine.runner import Runner

    from mmanat.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    if args.num_workers is not None:
        cfg.train_dataloader.num_workers = args.num_workers
        if args.num_workers == 0:
            cfg.train_dataloader.persistent_workers = False
    device = args.device or ('cuda' if torch.cuda.is_available() else 'cpu')
    with DefaultScope.overwrite_default_scope('mmanat'):
        from mmanat.registry import MODELS
        model = MODELS.build(cfg.model).to(device)
        loader = Runner.build_dataloader(cfg.train_dataloader, seed=0)
        optim = torch.optim.SGD(model.parameters(), lr=cfg.optim_wrapper.optimizer.lr,
                                momentum=0.9)
    scaler = torch.amp.GradScaler('cuda') if (args.amp and device == 'cuda') else None
    model.train()
    it = iter(loader)
    times, data_times, losses = [], [], []
    if device == 'cuda':
        torch.cuda.reset_peak_memory_stats()
    for i in range(args.warmup + args.iters):
        t0 = time.perf_counter()
        batch = next(it)
        t1 = time.perf_counter()
        with torch.autocast(device_type=device.split(':')[0], dtype=torch.float16,
                            enabled=scaler is not None):
            data = model.data_preprocessor(batch, True)
            loss = sum(model(**data, mode='loss').values())
        optim.zero_grad()
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(optim)
            scaler.update()
        else:
            loss.backward()
            optim.step()
        if device == 'cuda':
            torch.cuda.synchronize()
        t2 = time.perf_counter()
        losses.append(float(loss))
        if i >= args.warmup:
            times.append(t2 - t0)
            data_times.append(t1 - t0)
        print(f'iter {i + 1:4d}  loss {float(loss):.4f}  time {t2 - t0:.3f} s '
              f'(data {t1 - t0:.3f} s)', flush=True)
    n = len(times)
    rss_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2
    gpu = (f'{torch.cuda.max_memory_allocated() / 1024 ** 3:.2f} GiB'
           if device == 'cuda' else 'n/a')
    print()
    print('| config | device | batch | iters | it/s | s/iter | data s/iter | peak RSS | '
          'peak GPU |')
    print('|---|---|---|---|---|---|---|---|---|')
    print(f'| {osp.basename(args.config)} | {device}{" amp" if scaler else ""} | '
          f'{cfg.train_dataloader.batch_size} | {n} | {n / sum(times):.3f} | '
          f'{sum(times) / n:.3f} | {sum(data_times) / n:.3f} | {rss_gb:.2f} GiB | {gpu} |')
    print(f'loss: first {losses[0]:.4f}, last {losses[-1]:.4f}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
