#!/usr/bin/env python
"""Turn a training checkpoint into a small release checkpoint: model weights only (optionally
fp16), the config kept in ``meta['cfg']``, and print its SHA-256 for the model zoo.

    python tools/publish_checkpoint.py work_dirs/x/iter_20000.pth checkpoints/sam_default.pth
"""
import argparse
import hashlib
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src')
    parser.add_argument('dst')
    parser.add_argument('--fp16', action='store_true', help='store float tensors as fp16')
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
        state = {k: (v.half() if torch.is_tensor(v) and v.is_floating_point() else v)
                 for k, v in state.items()}
    meta = {k: v for k, v in ckpt.get('meta', {}).items()
            if k in ('cfg', 'iter', 'epoch', 'mmengine_version', 'time', 'seed')}
    meta['source'] = osp.basename(args.src)
    with atomic_path(args.dst) as tmp:
        torch.save({'state_dict': state, 'meta': meta}, tmp)
    h = hashlib.sha256(open(args.dst, 'rb').read()).hexdigest()
    size = osp.getsize(args.dst) / 2 ** 20
    print(f'{args.dst}: {size:.2f} MiB, iter {meta.get("iter")}, sha256 {h}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
