"""Adam's coarse-to-fine training stages (granularity n = 0, 2, 4, ...) inside one run."""
import copy
from collections import defaultdict
from typing import List, Optional, Sequence

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmanat.registry import HOOKS
from mmanat.utils.exceptions import InvalidInputError


def find_transforms(dataset, cls_name: str) -> list:
    """Every transform named ``cls_name`` in the pipeline(s) of ``dataset`` (looking through
    dataset wrappers and nested ``Compose``/``RandomApply``-like transforms)."""
    found, seen = [], set()

    def visit(obj, depth=0):
        if obj is None or id(obj) in seen or depth > 8:
            return
        seen.add(id(obj))
        if type(obj).__name__ == cls_name:
            found.append(obj)
            return
        for attr in ('pipeline', 'transforms', 'dataset', 'datasets'):
            child = getattr(obj, attr, None)
            if isinstance(child, (list, tuple)):
                for c in child:
                    visit(c, depth + 1)
            elif child is not None:
                visit(child, depth + 1)

    visit(dataset)
    return found


@HOOKS.register_module()
class AnatomyStageHook(Hook):
    """Run Adam's stages one after the other in a single (iteration-based) training run.

    At the start of stage ``s`` (the iteration after the previous stage's last one) the
    hook sets the Anatomy Decomposer granularity ``n``, switches the Purposive Pruner on for
    ``n > 0`` (``prune`` of the stage overrides), keeps both encoders, the queue and its
    pointer (they live in the model), and resets the optimiser state (momentum buffers), the
    learning rate and the parameter schedulers (rebuilt from ``cfg.param_scheduler``, whose
    ``end`` is set to the stage length, so each stage gets a full schedule; the config's
    schedule is written for stage 0). The dataloader iterator is restarted so that worker
    processes pick up the new granularity.

    The stage is a function of the iteration, so ``--resume`` restores it (a resume exactly at
    a stage start re-applies the reset). ``train_cfg.max_iters`` must be the sum of the stage
    lengths. Each iteration the stage and granularity are logged (``train/ad_stage``,
    ``train/ad_granularity``).

    Args:
        stages: ``[dict(granularity=0, iters=N0), dict(granularity=2, iters=N2), ...]``;
            optional ``prune`` (default ``granularity > 0``).
        reset_optimizer: clear the optimiser state at stage starts.
        reset_scheduler: restart the LR (and momentum) schedule at stage starts.
    """

    priority = 'VERY_LOW'  # after ParamSchedulerHook's step, so the reset schedule is fresh

    def __init__(self, stages: Sequence[dict], reset_optimizer: bool = True,
                 reset_scheduler: bool = True):
        if not stages:
            raise InvalidInputError('AnatomyStageHook: give at least one stage, e.g. '
                                    'stages=[dict(granularity=0, iters=1000)].')
        self.stages: List[dict] = []
        start = 0
        for i, st in enumerate(stages):
            n, iters = int(st.get('granularity', -1)), int(st.get('iters', 0))
            if n < 0 or iters < 1:
                raise InvalidInputError(f'AnatomyStageHook: stage {i} = {st!r} needs '
                                        'granularity >= 0 and iters >= 1.')
            self.stages.append(dict(granularity=n, iters=iters, start=start,
                                    prune=bool(st.get('prune', n > 0))))
            start += iters
        self.total_iters = start
        self.reset_optimizer = bool(reset_optimizer)
        self.reset_scheduler = bool(reset_scheduler)
        self.current: Optional[int] = None

    # ------------------------------------------------------------------ helpers
    def stage_at(self, it: int) -> int:
        """Index of the stage that iteration ``it`` (0-based) belongs to."""
        for i, st in enumerate(self.stages):
            if it < st['start'] + st['iters']:
                return i
        return len(self.stages) - 1

    @staticmethod
    def _model(runner):
        model = runner.model
        return model.module if is_model_wrapper(model) else model

    def _set_granularity(self, runner, n: int) -> None:
        loader = runner.train_loop.dataloader
        decomposers = find_transforms(loader.dataset, 'AnatomyDecomposer')
        if not decomposers:
            raise InvalidInputError('AnatomyStageHook: the training pipeline has no '
                                    'AnatomyDecomposer transform to set the granularity of.')
        for d in decomposers:
            d.set_granularity(n)
        self._restart_dataloader(runner)

    @staticmethod
    def _restart_dataloader(runner) -> None:
        """Drop prefetched batches and (persistent) workers so new ones copy the updated
        dataset; a no-op for ``num_workers=0`` beyond discarding the iterator."""
        loop = runner.train_loop
        loader = loop.dataloader
        if getattr(loader, 'num_workers', 0) == 0:
            return
        it = getattr(loader, '_iterator', None)
        if it is not None and hasattr(it, '_shutdown_workers'):
            it._shutdown_workers()
        loader._iterator = None
        # mmengine's InfiniteSampler keeps ONE index generator; closing the old iterator
        # closes it too, so start a fresh one (the index order restarts from its seed)
        sampler = getattr(loader, 'sampler', None)
        if hasattr(sampler, '_indices_of_rank') and hasattr(sampler, 'indices'):
            sampler.indices = sampler._indices_of_rank()
        inf = getattr(loop, 'dataloader_iterator', None)
        if inf is not None and hasattr(inf, '_iterator'):
            inf._iterator = iter(loader)

    def _reset_optim(self, runner, stage: dict) -> None:
        optim_wrapper = runner.optim_wrapper
        wrappers = optim_wrapper.values() if hasattr(optim_wrapper, 'values') and \
            not hasattr(optim_wrapper, 'optimizer') else [optim_wrapper]
        for ow in wrappers:
            opt = ow.optimizer
            if self.reset_optimizer:
                opt.state = defaultdict(dict)
            if self.reset_scheduler:
                for group in opt.param_groups:
                    for key in list(group):
                        if key.startswith('initial_') and key[8:] in group:
                            group[key[8:]] = group[key]
        if self.reset_scheduler and runner.cfg.get('param_scheduler'):
            runner.param_schedulers = runner.build_param_scheduler(
                self._stage_schedulers(runner, stage))

    def _stage_schedulers(self, runner, stage: dict) -> list:
        """The config's iteration-based parameter schedulers with ``end`` (and ``T_max``)
        set to the length of ``stage``; a scheduler that would begin at or after that end
        (a warm-up longer than the stage) is an error that names the stage and the fix."""
        cfgs = copy.deepcopy(runner.cfg.param_scheduler)
        cfgs = list(cfgs) if isinstance(cfgs, (list, tuple)) else [cfgs]
        first_len = self.stages[0]['iters']
        for c in cfgs:
            if c.get('by_epoch', True) and not c.get('convert_to_iter_based', False):
                continue
            if c.get('end') is None or int(c['end']) >= first_len:
                c['end'] = stage['iters']
            if 'T_max' in c and c['T_max'] is not None and int(c['T_max']) >= first_len:
                c['T_max'] = stage['iters'] - int(c.get('begin', 0))
            if int(c.get('begin', 0)) >= int(c['end']):
                idx = self.stages.index(stage)
                raise InvalidInputError(
                    f'{type(self).__name__}: stage {idx} has {stage["iters"]} iterations, but '
                    f'the param_scheduler {c.get("type")} begins at iteration '
                    f'{c.get("begin", 0)} of each stage (the warm-up): give every stage more '
                    f'than {c.get("begin", 0)} iterations or shorten the warm-up.')
        return cfgs

    def _apply(self, runner, idx: int, reset: bool) -> None:
        stage = self.stages[idx]
        self._set_granularity(runner, stage['granularity'])
        self._model(runner).prune = stage['prune']
        if reset:
            self._reset_optim(runner, stage)
        self.current = idx
        runner.logger.info(
            f'AnatomyStageHook: stage {idx} from iteration {stage["start"]}: granularity '
            f'n={stage["granularity"]}, pruner {"on" if stage["prune"] else "off"}, '
            f'{stage["iters"]} iterations' + ('; optimiser and schedule reset' if reset else ''))

    # ------------------------------------------------------------------ hook points
    def before_train(self, runner) -> None:
        max_iters = getattr(runner.train_loop, 'max_iters', None)
        if max_iters is not None and max_iters != self.total_iters:
            runner.logger.warning(f'AnatomyStageHook: the stages add up to {self.total_iters} '
                                  f'iterations but train_cfg.max_iters={max_iters}.')
        if self.reset_scheduler and runner.cfg.get('param_scheduler'):
            for stage in self.stages[1:]:  # fail now, not when the stage starts
                self._stage_schedulers(runner, stage)
        idx = self.stage_at(runner.iter)
        # a run (re)starting exactly at the start of a later stage resets like a live switch
        self._apply(runner, idx, reset=idx > 0 and runner.iter == self.stages[idx]['start'])

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        runner.message_hub.update_scalar('train/ad_stage', float(self.current or 0))
        runner.message_hub.update_scalar(
            'train/ad_granularity', float(self.stages[self.current or 0]['granularity']))

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        nxt = runner.iter + 1  # index of the next iteration
        idx = self.stage_at(nxt)
        if idx != self.current and nxt < self.total_iters:
            self._apply(runner, idx, reset=True)
