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

from .outputs import output_file
from .runner import command


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """The options of ``mmanat-publish-checkpoint``."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('src', help='checkpoint to publish (.pth of tools/train.py)')
    parser.add_argument('dst', type=output_file,
                        help='published checkpoint to write (.pth), written atomically')
    parser.add_argument('--fp16', action='store_true',
                        help='store float tensors as fp16 (those beyond its range stay fp32)')
    parser.add_argument('--zoo', action='store_true',
                        help='list the file in the model_zoo.json of its folder')
    parser.add_argument('--task', default='sam',
                        help='model zoo task: sam, semantic, ct_mr, adam, adam_v2, sam2d '
                        '(with --zoo)')
    parser.add_argument('--config', default=None,
                        help='config file the checkpoint was trained with (with --zoo; default: '
                        'the file name recorded in the checkpoint)')
    parser.add_argument('--description', default='', help='one line for the zoo entry')
    parser.add_argument('--repair-bn', choices=['preserve', 'reset'], default=None,
                        help='repair non-finite BatchNorm running statistics (otherwise they '
                        'are refused): preserve keeps the eval-mode output exactly (a channel '
                        'with an inf variance outputs its bias: weight 0, mean 0, variance 1); '
                        'reset sets mean 0, variance 1 for further training')
    return parser.parse_args(argv)


@command
def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry of ``mmanat-publish-checkpoint``: parse, then :func:`publish_checkpoint`."""
    args = parse_args(argv)
    publish_checkpoint(args.src, args.dst, fp16=args.fp16, zoo=args.zoo, task=args.task,
                       config=args.config, description=args.description,
                       repair_bn=args.repair_bn)
    return 0


def publish_checkpoint(src: str, dst: str, *, fp16: bool = False, zoo: bool = False,
                       task: str = 'sam', config: Optional[str] = None,
                       description: str = '', repair_bn: Optional[str] = None) -> str:
    """Write the release checkpoint ``dst`` (weights and ``meta['cfg']``) from ``src``.

    Args:
        src (str): a training checkpoint (mmengine ``iter_*.pth``).
        dst (str): the release checkpoint to write (atomically).
        fp16 (bool): store float tensors as fp16 (those beyond its range stay fp32).
        zoo (bool): list ``dst`` in the ``model_zoo.json`` of its folder.
        task (str): model zoo task: 'sam', 'semantic', 'ct_mr', 'adam', 'adam_v2' or 'sam2d'
            (with ``zoo``).
        config (str, optional): config file of the checkpoint (with ``zoo``; default: the
            file name recorded in the checkpoint).
        description (str): one line for the zoo entry.
        repair_bn (str, optional): ``'preserve'`` or ``'reset'``: repair non-finite BatchNorm
            running statistics (:func:`mmanat.models.utils.repair_bn_state_dict`) before
            writing. Without it a checkpoint holding any non-finite tensor is refused.

    Returns:
        str: the SHA-256 of ``dst``.

    Raises:
        InvalidInputError: ``src`` does not exist, or holds a non-finite tensor (after the
            optional BatchNorm repair): nothing is written then.
    """
    import torch

    from mmanat.fileio.atomic import atomic_path
    from mmanat.utils import allow_mmengine_checkpoint_globals
    from mmanat.utils.exceptions import InvalidInputError
    allow_mmengine_checkpoint_globals()
    if not osp.isfile(src):
        raise InvalidInputError(f'checkpoint not found: {src}; pass the .pth file written by '
                                'tools/train.py.')
    ckpt = torch.load(src, map_location='cpu')
    state = dict(ckpt.get('state_dict', ckpt))
    repaired = {}
    if repair_bn:
        from mmanat.models.utils import repair_bn_state_dict
        repaired = repair_bn_state_dict(state, mode=repair_bn)
        if repaired:
            print(f'repaired non-finite BatchNorm statistics ({repair_bn}): {repaired}')
    if fp16:
        from mmanat.utils.checkpoint import state_dict_to_fp16
        state, kept = state_dict_to_fp16(state)
        if kept:
            print(f'kept in float32 (values beyond the float16 range): {", ".join(kept)}')
    bad = [k for k, v in state.items()
           if torch.is_tensor(v) and v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise InvalidInputError(
            f'{src}: non-finite values in {", ".join(bad)}; nothing written. A BatchNorm '
            'running_var of inf (a channel switched off) is repaired with --repair-bn '
            'preserve (same outputs) or --repair-bn reset (to train on).')
    old_meta = ckpt.get('meta', {}) or {}
    meta = {k: v for k, v in old_meta.items()
            if k in ('cfg', 'iter', 'epoch', 'mmengine_version', 'time', 'seed', 'chain')}
    # republishing a release file keeps the name of the training checkpoint it came from
    meta['source'] = old_meta.get('source') or osp.basename(src)
    if repaired:
        meta['repaired_bn'] = dict(mode=repair_bn, channels=repaired)
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

