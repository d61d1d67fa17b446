"""Train an mmanat model with the mmengine Runner (``mmanat-train``, ``tools/train.py``).

Examples::

    python tools/train.py configs/sam/sam_tiny-fpn3d_1xb2-cpu-300it_synthetic-ct.py  # one CPU/GPU
    python tools/train.py CONFIG --resume                                  # resume the latest
    python tools/train.py CONFIG --resume work_dirs/x/iter_2000.pth        # resume this one
    tools/dist_train.sh configs/sam/uae_s.py 8                             # 8 GPUs (torchrun)

The shape follows mmpretrain's ``tools/train.py``: :func:`parse_args`, :func:`merge_args`,
:func:`main`. A config names ``default_scope = 'mmanat'``; the registry's ``locations``
import each component's module when the config is built. On a CPU-only machine
``--launcher pytorch`` trains with a gloo process group (:func:`mmanat.utils.setup_distributed`).
"""
import argparse
import os
import os.path as osp
from typing import Optional, Sequence

from .runner import command


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """The options of ``mmanat-train``."""
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(description='Train an mmanat model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='where logs and checkpoints go '
                        '(default: work_dirs/<config name>)')
    parser.add_argument('--amp', action='store_true',
                        help='mixed precision (fp16, dynamic loss scale); GPU only')
    parser.add_argument('--resume', nargs='?', type=str, const='auto',
                        help='resume from this checkpoint, or with no value from the latest '
                        'checkpoint in the work dir')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config entries, e.g. train_cfg.max_iters=100')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm'], default='none',
                        help='job launcher (dist_train.sh / slurm_train.sh set this)')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def merge_args(cfg, args: argparse.Namespace):
    """Apply the command-line options to the loaded config.

    Args:
        cfg (mmengine.Config): the config of ``args.config``.
        args (argparse.Namespace): the parsed options.

    Returns:
        mmengine.Config: ``cfg``, updated (work dir, AMP, resume, ``--cfg-options``).

    Raises:
        InvalidInputError: ``--resume PATH`` names a missing checkpoint.
    """
    import torch
    from mmengine.logging import print_log

    from mmanat.utils.exceptions import InvalidInputError
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('work_dirs', osp.splitext(osp.basename(args.config))[0])
    if args.amp:
        if torch.cuda.is_available():
            cfg.optim_wrapper.type = 'AmpOptimWrapper'
            cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
        else:
            print_log('--amp ignored: mixed precision needs a GPU and none is available; '
                      'training in fp32.', logger='current', level=30)
    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        if not osp.isfile(args.resume):
            raise InvalidInputError(f'--resume: checkpoint not found: {args.resume}')
        cfg.resume = True
        cfg.load_from = args.resume
    cfg.setdefault('default_scope', 'mmanat')
    return cfg


@command
def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry of ``mmanat-train``: load the config, merge the options, run the Runner."""
    args = parse_args(argv)
    from mmengine.config import Config
    from mmengine.runner import Runner

    from mmanat.registry import RUNNERS
    from mmanat.utils import (allow_mmengine_checkpoint_globals, register_all_modules,
                              setup_distributed)
    from mmanat.utils.exceptions import InvalidInputError
    register_all_modules(init_default_scope=False)
    allow_mmengine_checkpoint_globals()
    if not osp.isfile(args.config):
        raise InvalidInputError(f'config file not found: {args.config}')
    cfg = merge_args(Config.fromfile(args.config), args)
    setup_distributed(cfg, args.launcher)
    runner = RUNNERS.build(cfg) if 'runner_type' in cfg else Runner.from_cfg(cfg)
    runner.train()
    return 0
