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

from .outputs import output_dir
from .runner import command


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """The options of ``mmanat-train``."""
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(description='Train an mmanat model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', type=output_dir, help='where logs and checkpoints go '
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
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0,
        help='set by older torch.distributed.launch (LOCAL_RANK env otherwise)')
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
            raise InvalidInputError(f'--resume: checkpoint not found: {args.resume}; pass an '
                                    'iter_*.pth file of the run, or --resume alone for the '
                                    'latest one in the work dir.')
        cfg.resume = True
        cfg.load_from = args.resume
    cfg.setdefault('default_scope', 'mmanat')
    fit_to_length(cfg)
    return cfg


def apply_torch_threads(cfg) -> Optional[int]:
    """Set the intra-op threads of this process from ``env_cfg.torch_threads`` (a config key
    of mmanat, ignored by mmengine's Runner).

    ``None`` or absent: nothing changes (``OMP_NUM_THREADS`` or torch's default, one thread
    per core). A positive int: ``torch.set_num_threads(n)``; dataloader workers use one
    thread each whatever it says. The shipped CPU recipe of SAM sets 1: on cores shared
    with other jobs, busy-waiting OpenMP threads stall each other (measurements in
    docs/en/user_guides/train.md, tools/benchmarks/bench_train.py --compare); on an idle
    machine ``None`` (one thread per core) is faster.

    Returns the number of threads set, or ``None``.

    Raises:
        InvalidInputError: the value is not a positive int.
    """
    from mmanat.utils.exceptions import InvalidInputError
    n = (cfg.get('env_cfg') or {}).get('torch_threads')
    if n is None:
        return None
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise InvalidInputError(
            f'env_cfg.torch_threads={n!r} in the config must be a positive int (threads of '
            'the training process) or None (torch default); set it with --cfg-options '
            'env_cfg.torch_threads=2')
    import torch
    torch.set_num_threads(n)
    return n


def fit_to_length(cfg) -> list:
    """Make a config run for its own length, however short (``train_cfg.max_iters=3``).

    Parameter schedulers that would start at or after the last iteration (epoch) are dropped
    (mmengine refuses them: ``end should be larger than begin``), and the stage lists of
    custom hooks (``stages=[dict(iters=...), ...]``, e.g. Adam's ``AnatomyStageHook``) are cut
    to the run's length. A config whose schedule fits is left unchanged.

    Args:
        cfg (mmengine.Config): the merged config; updated in place.

    Returns:
        list[str]: what was changed (also logged).
    """
    from mmengine.logging import print_log
    loop = cfg.get('train_cfg') or {}
    by_epoch = 'max_epochs' in loop
    length = loop.get('max_epochs' if by_epoch else 'max_iters')
    if not isinstance(length, int) or length < 1:
        return []
    changes = []
    scheds = cfg.get('param_scheduler')
    if scheds is not None:
        single = not isinstance(scheds, (list, tuple))
        keep = []
        for sched in ([scheds] if single else scheds):
            unit_epoch = sched.get('by_epoch', True)
            limit = length if unit_epoch == by_epoch else None
            if limit is not None and int(sched.get('begin', 0)) >= limit:
                changes.append(f'param_scheduler {sched.get("type")} (begin '
                               f'{sched.get("begin")}) dropped')
                continue
            keep.append(sched)
        if changes:
            cfg.param_scheduler = keep[0] if single and keep else keep
    if not by_epoch:
        for hook in cfg.get('custom_hooks') or []:
            stages = hook.get('stages') if hasattr(hook, 'get') else None
            if not stages or sum(int(st.get('iters', 0)) for st in stages) <= length:
                continue
            left, cut = length, []
            for st in stages:
                if left <= 0:
                    break
                cut.append(dict(st, iters=min(int(st.get('iters', 0)), left)))
                left -= cut[-1]['iters']
            hook['stages'] = cut
            changes.append(f'{hook.get("type")} stages cut to {[st["iters"] for st in cut]} '
                           'iterations')
    if changes:
        print_log(f'a {length}-{"epoch" if by_epoch else "iteration"} run: '
                  + '; '.join(changes), logger='current')
    return changes


def check_start_checkpoint(cfg) -> Optional[str]:
    """Check the checkpoint a run starts from (``--resume``, ``load_from``) before anything is
    built, so that a truncated file or another model's weights stop the run with one line
    instead of a traceback (resume) or a silent start from scratch (``load_from``).

    * every checkpoint: readable (:func:`mmanat.utils.checkpoint.load_checkpoint_file`), of
      the config's network kind (:func:`~mmanat.utils.checkpoint.check_network_fits`), and
      no weight of another shape than the config's;
    * ``--resume``: the weights fit the config exactly and the file holds the training state
      (optimizer, iteration);
    * ``load_from`` (fine-tuning): at least half of the config's weights are in the file.

    Args:
        cfg (mmengine.Config): the merged config (``load_from``, ``resume``, ``work_dir``).

    Returns:
        str or None: the checkpoint checked (``None``: the run starts from scratch).

    Raises:
        InvalidInputError: naming the file, what was found, what was expected and what to do.
    """
    from mmengine.registry import init_default_scope

    from mmanat.registry import MODELS
    from mmanat.utils.checkpoint import (check_network_fits, checkpoint_network,
                                         describe_misfit, load_checkpoint_file,
                                         state_dict_misfit, state_dict_of)
    from mmanat.utils.exceptions import InvalidInputError
    path, resume = cfg.get('load_from'), bool(cfg.get('resume'))
    if not path and resume:
        from mmengine.runner import find_latest_checkpoint
        path = find_latest_checkpoint(cfg.work_dir) if osp.isdir(cfg.work_dir) else None
    if not path:
        return None
    how = '--resume' if resume else 'load_from'
    if not osp.isfile(path):
        raise InvalidInputError(f'{how} {path}: checkpoint not found (working directory '
                                f'{os.getcwd()}); pass an iter_*.pth file of tools/train.py.')
    ckpt = load_checkpoint_file(path)
    state = state_dict_of(ckpt, path)
    from mmanat.apis.published import is_published_state_dict
    meta = ckpt.get('meta') if isinstance(ckpt.get('meta'), dict) else {}
    if not meta.get('cfg') and is_published_state_dict(state):
        raise InvalidInputError(
            f'{how} {path}: a released SAM / UAE checkpoint (the authors\' key names); convert '
            'it first: python tools/model_converters/sam_to_mmanat.py '
            f'{path} converted.pth, then pass load_from=converted.pth.')
    name = osp.splitext(osp.basename(cfg.filename or 'config'))[0]
    check_network_fits(path, checkpoint_network(ckpt, state), None, cfg=cfg, config_name=name,
                       user=how)
    init_default_scope(cfg.get('default_scope', 'mmanat'))
    model_cfg = cfg.model.copy() if hasattr(cfg.model, 'copy') else dict(cfg.model)
    own = {k: tuple(v.shape) for k, v in MODELS.build(model_cfg).state_dict().items()}
    missing, unexpected, mismatched = state_dict_misfit(own, state)
    shared = len(own) - len(missing)
    if resume:
        if missing or unexpected or mismatched:
            raise InvalidInputError(
                f'--resume {path}: the checkpoint is not a run of the config {name!r}: '
                + describe_misfit(own, state, missing, unexpected, mismatched)
                + '; resume with the config the run was started with.')
        if not isinstance(ckpt.get('optimizer'), dict) or not isinstance(ckpt.get('meta'), dict):
            raise InvalidInputError(
                f'--resume {path}: the file holds weights only (no optimizer state), so it '
                f'cannot resume a run; start from its weights with --cfg-options '
                f'load_from={path}.')
    elif mismatched or shared < max(1, len(own) // 2):
        raise InvalidInputError(
            f'load_from {path}: the checkpoint does not fit the config {name!r} (it provides '
            f'{shared} of the {len(own)} weights; '
            + describe_misfit(own, state, missing, unexpected, mismatched)
            + '); pass a checkpoint of this model, or no load_from to train from scratch.')
    return path


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
        raise InvalidInputError(f'config file not found: {args.config}; pass a config file '
                                'such as configs/sam/sam_r18-fpn3d_8xb6-20k_ct-2mm.py.')
    cfg = merge_args(Config.fromfile(args.config), args)
    apply_torch_threads(cfg)
    check_start_checkpoint(cfg)
    setup_distributed(cfg, args.launcher)
    runner = RUNNERS.build(cfg) if 'runner_type' in cfg else Runner.from_cfg(cfg)
    runner.train()
    return 0
