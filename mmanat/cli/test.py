"""Evaluate a checkpoint through mmengine's test loop with the registered metrics.

``mmanat-test`` (same as ``python tools/test.py``). The config needs ``test_dataloader``,
``test_evaluator`` and ``test_cfg``, e.g. from ``configs/_base_/datasets/
synthetic_landmark_pairs.py`` (landmark pairs of synthetic subjects, no download; metric
``LandmarkMetric``: mean radial error in mm) or ``dlt_lesion_pairs.py`` (DLT lesion pairs;
``LesionTrackingMetric``: CPM@Radius, CPM@10mm, MED). Examples::

    mmanat-test configs/sam/CONFIG.py checkpoints/sam_default.pth --out results.json
    mmanat-test CONFIG CKPT --cfg-options test_dataloader.dataset.num_pairs=8
    tools/dist_test.sh CONFIG CKPT 8 --out results.json          # 8 GPUs (torchrun)

The checkpoint must fit the config exactly (missing, unexpected or mis-shaped weights are an
error, not a warning). ``--out`` writes the metrics and, per pair, the predicted and true
points (world LPS mm) as JSON.
"""
import argparse
import json
import os
import os.path as osp
from typing import Optional, Sequence

from .outputs import output_dir, output_file
from .runner import command

_TEST_KEYS = ('test_dataloader', 'test_evaluator', 'test_cfg')


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """The options of ``mmanat-test``."""
    from mmengine.config import DictAction
    p = argparse.ArgumentParser(description='Evaluate a checkpoint with mmengine\'s test loop '
                                'and the registered metrics')
    p.add_argument('config', help='config file with test_dataloader / test_evaluator / '
                   'test_cfg')
    p.add_argument('checkpoint', help='checkpoint file (.pth)')
    p.add_argument('--work-dir', type=output_dir, help='where the test logs go (default: '
                   'work_dirs/<config name>)')
    p.add_argument('--out', type=output_file,
                   help='write the metrics and per-pair predictions to this JSON')
    p.add_argument('--cfg-options', nargs='+', action=DictAction,
                   help='override config entries, e.g. test_dataloader.dataset.num_pairs=8')
    p.add_argument('--launcher', choices=['none', 'pytorch', 'slurm'], default='none',
                   help='job launcher (dist_test.sh sets this)')
    p.add_argument('--local_rank', '--local-rank', type=int, default=0,
        help='set by older torch.distributed.launch (LOCAL_RANK env otherwise)')
    args = p.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def build_test_cfg(args: argparse.Namespace):
    """Load the config, merge the options and check that it can test.

    Returns:
        the ``mmengine.Config``, with ``load_from = None`` (:func:`main` loads the checkpoint
        strictly itself).

    Raises:
        InvalidInputError: missing config or checkpoint file, or a config without the three
            test entries.
    """
    from mmengine.config import Config

    from mmanat.utils.exceptions import InvalidInputError
    if not osp.isfile(args.config):
        raise InvalidInputError(f'config file not found: {args.config}; pass a config file '
                                'such as configs/sam/sam_r18-fpn3d_8xb6-20k_ct-2mm.py.')
    if not osp.isfile(args.checkpoint):
        raise InvalidInputError(f'checkpoint not found: {args.checkpoint} (working directory '
                                f'{os.getcwd()}); pass the .pth file of tools/train.py.')
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    missing = [k for k in _TEST_KEYS if cfg.get(k) is None]
    if missing:
        raise InvalidInputError(
            f'{args.config} has no {", ".join(missing)}; add '
            "'../_base_/datasets/synthetic_landmark_pairs.py' (or dlt_lesion_pairs.py) to its "
            '_base_ list.')
    if args.work_dir:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('work_dirs', osp.splitext(osp.basename(args.config))[0])
    cfg.load_from = None
    cfg.resume = False
    cfg.setdefault('default_scope', 'mmanat')
    return cfg


def write_results(path: str, args: argparse.Namespace, metrics: dict, pairs) -> str:
    """Write the metrics and the per-pair predictions as JSON (atomically, NaN -> null).

    Args:
        path: the output file.
        args: the command's options (config and checkpoint are recorded).
        metrics: the evaluator's metrics.
        pairs: the test loop's ``pair_results`` (all processes), or ``None``.

    Returns:
        the path written.
    """
    import numpy as np

    from mmanat.fileio import atomic_path
    from mmanat.utils.misc import to_plain
    rows = []
    for p in pairs or []:
        row = dict(p)
        if p.get('gt_points') is not None:
            pred = np.asarray(p['pred_points'], np.float64).reshape(-1, 3)
            gt = np.asarray(p['gt_points'], np.float64).reshape(-1, 3)
            row['errors_mm'] = np.linalg.norm(pred - gt, axis=1)
        rows.append(row)
    data = dict(config=args.config, checkpoint=args.checkpoint, metrics=metrics, pairs=rows)
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with atomic_path(path) as tmp:
        with open(tmp, 'w', encoding='utf-8') as f:
            json.dump(to_plain(data, nan_to_none=True), f, indent=1)
            f.write('\n')
    return path


@command
def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry of ``mmanat-test``: build the runner, load the checkpoint strictly, run
    ``runner.test()`` and optionally write the results."""
    args = parse_args(argv)
    from mmengine.dist import collect_results, is_main_process
    from mmengine.model import is_model_wrapper
    from mmengine.runner import Runner

    from mmanat.registry import RUNNERS
    from mmanat.utils import register_all_modules, setup_distributed
    from mmanat.utils.checkpoint import (allow_mmengine_checkpoint_globals, check_network_fits,
                                         checkpoint_network, fit_state_dict,
                                         load_checkpoint_file, state_dict_of)
    register_all_modules(init_default_scope=False)
    allow_mmengine_checkpoint_globals()
    cfg = build_test_cfg(args)
    # read the weights before the (slow) runner is built, so a bad file (or the checkpoint
    # of another network) fails at once
    ckpt = load_checkpoint_file(args.checkpoint)
    state = state_dict_of(ckpt, args.checkpoint)
    check_network_fits(args.checkpoint, checkpoint_network(ckpt, state), None, cfg=cfg,
                       config_name=osp.splitext(osp.basename(args.config))[0],
                       user='tools/test.py')
    setup_distributed(cfg, args.launcher)
    runner = RUNNERS.build(cfg) if 'runner_type' in cfg else Runner.from_cfg(cfg)
    model = runner.model.module if is_model_wrapper(runner.model) else runner.model
    fit_state_dict(model, state, args.checkpoint, osp.basename(args.config))
    metrics = runner.test()
    loop = runner.test_loop
    pairs = getattr(loop, 'pair_results', None)
    if pairs is not None:
        pairs = collect_results(pairs, len(loop.dataloader.dataset), device='cpu')
    if is_main_process():
        print('metrics: ' + ', '.join(f'{k}={v:.4g}' if isinstance(v, float) else f'{k}={v}'
                                      for k, v in metrics.items()), flush=True)
        if args.out:
            print(f'results written to {write_results(args.out, args, metrics, pairs)}',
                  flush=True)
    return 0


if __name__ == '__main__':  # pragma: no cover
    raise SystemExit(main())
