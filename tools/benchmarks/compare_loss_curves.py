#!/usr/bin/env python
"""Loss curves of a training config and of a variant of it, on the same batches and the same
sampler random numbers: does a speed-up that changes the numerics (e.g. ``cpu_bf16``) change
what the recipe learns?

    # the shipped SAM recipe (bf16 convolutions) against float32 convolutions, 50 iterations
    python tools/benchmarks/compare_loss_curves.py \
        configs/sam/sam_tiny-fpn3d_1xb2-cpu-1000it_synthetic-ct-samples.py \
        --iters 50 --variant model.cpu_bf16=False

Both models start from the same weights (seed 0; python, numpy and torch seeded, so a run
repeats exactly). Every iteration takes one batch of the
config's dataloader and feeds it to both, each after ``torch.manual_seed(1000 + i)`` (so the
pair samplers draw the same random numbers), with the config's SGD settings (lr, momentum,
weight decay) and a linear warm-up over the first ``--warmup-iters`` iterations from 1 % of
the lr (the CPU recipes' LinearLR). Prints the losses of every iteration and their means per
block of 10 iterations. Runs on the CPU with one thread (``--threads``).
"""
import argparse
import copy
import sys
import time


def run(args):
    """Train both models side by side; returns ``{name: [[loss values] per iteration]}``."""
    import torch
    from mmengine.config import Config
    from mmengine.registry import DefaultScope
    from mmengine.runner import Runner, set_random_seed

    from mmanat.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    torch.set_num_threads(args.threads)
    set_random_seed(0)   # python, numpy and torch: the same batches from run to run
    cfg = Config.fromfile(args.config)
    variant = copy.deepcopy(cfg)
    variant.merge_from_dict(args.variant)
    opt = cfg.optim_wrapper.optimizer
    names = ('config', 'variant')
    models, optims = {}, {}
    with DefaultScope.overwrite_default_scope('mmanat'):
        from mmanat.registry import MODELS
        for name, c in zip(names, (cfg, variant)):
            torch.manual_seed(0)
            models[name] = MODELS.build(c.model)
            models[name].train()
            optims[name] = torch.optim.SGD(models[name].parameters(), lr=opt.lr,
                                           momentum=opt.get('momentum', 0.0),
                                           weight_decay=opt.get('weight_decay', 0.0))
        loader = Runner.build_dataloader(cfg.train_dataloader, seed=0)
    print(f'variant: {args.variant}', flush=True)
    history = {n: [] for n in names}
    batches = iter(loader)
    for i in range(args.iters):
        batch = next(batches)
        warm = min(i, args.warmup_iters) / max(args.warmup_iters, 1)
        lr = opt.lr * (0.01 + 0.99 * warm)
        line = [f'iter {i:3d}']
        for name in names:
            model, optim = models[name], optims[name]
            for group in optim.param_groups:
                group['lr'] = lr
            torch.manual_seed(1000 + i)
            t = time.process_time()
            losses = model(**model.data_preprocessor(batch, True), mode='loss')
            optim.zero_grad()
            sum(losses.values()).backward()
            optim.step()
            history[name].append([float(v.detach()) for v in losses.values()])
            line.append(f'{name} ' + ' '.join(
                f'{k} {v:.4f}' for k, v in zip(losses, history[name][-1]))
                + f' ({time.process_time() - t:.2f} CPU s)')
        print('  '.join(line), flush=True)
        keys = list(losses)
    print()
    print('| iterations | ' + ' | '.join(f'{n} {k}' for k in keys for n in names) + ' |')
    print('|---|' + '---|' * (len(keys) * len(names)))
    for s in range(0, args.iters, 10):
        cells = []
        for j, _ in enumerate(keys):
            for n in names:
                block = history[n][s:s + 10]
                cells.append(f'{sum(h[j] for h in block) / len(block):.4f}')
        print(f'| {s}-{min(s + 10, args.iters) - 1} | ' + ' | '.join(cells) + ' |')
    return history


def parse_args(argv=None):
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('--variant', nargs='+', action=DictAction, required=True,
                        help='config overrides of the variant, e.g. model.cpu_bf16=False')
    parser.add_argument('--iters', type=int, default=50)
    parser.add_argument('--warmup-iters', type=int, default=20)
    parser.add_argument('--threads', type=int, default=1)
    args = parser.parse_args(argv)
    if args.iters < 1 or args.threads < 1:
        parser.error(f'--iters ({args.iters}) and --threads ({args.threads}) must be >= 1')
    return args


def main(argv=None):
    run(parse_args(argv))
    return 0


if __name__ == '__main__':
    sys.exit(main())
