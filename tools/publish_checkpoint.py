#!/usr/bin/env python
"""Turn a training checkpoint into a small release checkpoint: model weights only (optionally
fp16), the config kept in ``meta['cfg']``, and print its SHA-256 for the model zoo.

    python tools/publish_checkpoint.py work_dirs/x/iter_20000.pth checkpoints/sam_default.pth \
        --fp16 --zoo --task sam --config configs/sam/sam_tiny_synthetic_ct_cpu.py

With ``--zoo`` the file is listed in ``model_zoo.json`` next to it (SHA-256, size, config,
task): mmanat then verifies the hash every time the checkpoint is loaded.
"""
import argparse
import hashlib
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('src')
    parser.add_argument('dst')
    parser.add_argument('--fp16', action='store_true',
                        help='store float tensors as fp16 (those beyond its range stay fp32)')
    parser.add_argument('--zoo', action='store_true',
                        help='list the file in the model_zoo.json of its folder')
    parser.add_argument('--task', default='sam',
                        help='model zoo task: sam, semantic, ct_mr, adam (with --zoo)')
    parser.add_argument('--config', default=None,
                        help='config file the checkpoint was trained with (with --zoo; default: '
                        'the file name recorded in the checkpoint)')
    parser.add_argument('--description', default='', help='one line for the zoo entry')
    args = parser.parse_args(argv)
    import torch

    from mmanat.fileio.atomic import atomic_path
    from mmanat.utils import allow_mmengine_checkpoint_globals
    allow_mmengine_checkpoint_globals()
    if not osp.isfile(args.src):
        raise SystemExit(f'checkpoint not found: {args.src}')
    ckpt = torch.load(args.src, map_location='cpu')
    state = ckpt.get('state_dict', ckpt)
    if args.fp16:
        from mmanat.utils.checkpoint import state_dict_to_fp16
        state, kept = state_dict_to_fp16(state)
        if kept:
            print(f'kept in float32 (values beyond the float16 range): {", ".join(kept)}')
    bad = [k for k, v in state.items()
           if torch.is_tensor(v) and v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        print(f'warning: {args.src} holds non-finite values in {", ".join(bad)} (copied as '
              'they are; in a BatchNorm running_var an inf switches that channel off)')
    meta = {k: v for k, v in ckpt.get('meta', {}).items()
            if k in ('cfg', 'iter', 'epoch', 'mmengine_version', 'time', 'seed')}
    meta['source'] = osp.basename(args.src)
    with atomic_path(args.dst) as tmp:
        torch.save({'state_dict': state, 'meta': meta}, tmp)
    h = hashlib.sha256(open(args.dst, 'rb').read()).hexdigest()
    size = osp.getsize(args.dst) / 2 ** 20
    print(f'{args.dst}: {size:.2f} MiB, iter {meta.get("iter")}, sha256 {h}')
    if args.zoo:
        from mmanat.apis.model_zoo import register_checkpoint
        config = args.config
        if config is None:
            cfg = meta.get('cfg')
            config = getattr(cfg, 'filename', None) or '(stored in the checkpoint)'
        entry = register_checkpoint(args.dst, task=args.task, config=config,
                                    description=args.description, iter=meta.get('iter'),
                                    source=meta['source'])
        print(f'listed in {osp.join(osp.dirname(args.dst) or ".", "model_zoo.json")}: {entry}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
