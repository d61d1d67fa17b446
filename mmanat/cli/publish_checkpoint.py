"""Turn a training checkpoint into a small release checkpoint: model weights only (optionally
fp16), the config kept in ``meta['cfg']``, and print its SHA-256 for the model zoo.

    python tools/publish_checkpoint.py work_dirs/x/iter_20000.pth checkpoints/sam_default.pth \
        --fp16 --zoo --task sam \
        --config configs/sam/sam_tiny-fpn3d_1xb2-cpu-1000it_synthetic-ct-samples.py

With ``--zoo`` the file is listed in ``model_zoo.json`` next to it (SHA-256, size, config,
task): mmanat then verifies the hash every time the checkpoint is loaded.
"""
import argparse
import hashlib
import os.path as osp
from typing import Optional, Sequence

from .runner import command


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """The options of ``mmanat-publish-checkpoint``."""
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
    return parser.parse_args(argv)


@command
def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry of ``mmanat-publish-checkpoint``: parse, then :func:`publish_checkpoint`."""
    args = parse_args(argv)
    publish_checkpoint(args.src, args.dst, fp16=args.fp16, zoo=args.zoo, task=args.task,
                       config=args.config, description=args.description)
    return 0


def publish_checkpoint(src: str, dst: str, *, fp16: bool = False, zoo: bool = False,
                       task: str = 'sam', config: Optional[str] = None,
                       description: str = '') -> str:
    """Write the release checkpoint ``dst`` (weights and ``meta['cfg']``) from ``src``.

    Args:
        src (str): a training checkpoint (mmengine ``iter_*.pth``).
        dst (str): the release checkpoint to write (atomically).
        fp16 (bool): store float tensors as fp16 (those beyond its range stay fp32).
        zoo (bool): list ``dst`` in the ``model_zoo.json`` of its folder.
        task (str): model zoo task: 'sam', 'semantic', 'ct_mr' or 'adam' (with ``zoo``).
        config (str, optional): config file of the checkpoint (with ``zoo``; default: the
            file name recorded in the checkpoint).
        description (str): one line for the zoo entry.

    Returns:
        str: the SHA-256 of ``dst``.

    Raises:
        InvalidInputError: ``src`` does not exist.
    """
    import torch

    from mmanat.fileio.atomic import atomic_path
    from mmanat.utils import allow_mmengine_checkpoint_globals
    from mmanat.utils.exceptions import InvalidInputError
    allow_mmengine_checkpoint_globals()
    if not osp.isfile(src):
        raise InvalidInputError(f'checkpoint not found: {src}')
    ckpt = torch.load(src, map_location='cpu')
    state = ckpt.get('state_dict', ckpt)
    if fp16:
        from mmanat.utils.checkpoint import state_dict_to_fp16
        state, kept = state_dict_to_fp16(state)
        if kept:
            print(f'kept in float32 (values beyond the float16 range): {", ".join(kept)}')
    bad = [k for k, v in state.items()
           if torch.is_tensor(v) and v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        print(f'warning: {src} holds non-finite values in {", ".join(bad)} (copied as '
              'they are; in a BatchNorm running_var an inf switches that channel off)')
    meta = {k: v for k, v in ckpt.get('meta', {}).items()
            if k in ('cfg', 'iter', 'epoch', 'mmengine_version', 'time', 'seed')}
    meta['source'] = osp.basename(src)
    with atomic_path(dst) as tmp:
        torch.save({'state_dict': state, 'meta': meta}, tmp)
    h = hashlib.sha256(open(dst, 'rb').read()).hexdigest()
    size = osp.getsize(dst) / 2 ** 20
    print(f'{dst}: {size:.2f} MiB, iter {meta.get("iter")}, sha256 {h}')
    if zoo:
        from mmanat.utils.model_zoo import register_checkpoint
        if config is None:
            cfg = meta.get('cfg')
            config = getattr(cfg, 'filename', None) or '(stored in the checkpoint)'
        entry = register_checkpoint(dst, task=task, config=config,
                                    description=description, iter=meta.get('iter'),
                                    source=meta['source'])
        print(f'listed in {osp.join(osp.dirname(dst) or ".", "model_zoo.json")}: {entry}')
    return h

