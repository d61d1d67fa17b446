"""Adam v2's coarse-to-fine stages (granularity g = 0, 1, 2) inside one run."""
from mmanat.registry import HOOKS
from mmanat.utils.exceptions import InvalidInputError

from .anatomy_stage_hook import AnatomyStageHook, find_transforms


@HOOKS.register_module()
class AnatomyStageHookV2(AnatomyStageHook):
    """:class:`AnatomyStageHook` for Adam v2 (Hosseinzadeh Taher et al., CVPR 2024, Sec. 3:
    the model learned at one granularity initialises the next).

    At the start of each stage: the :class:`AnatomyDecomposerV2` granularity ``g`` is set and
    the dataloader restarted; the optimiser state, learning-rate / weight-decay schedules are
    reset as in v1 (``reset_optimizer``, ``reset_scheduler``); the student, the teacher, the
    localizability centre and all heads carry over. The teacher's EMA momentum schedule
    (0.996 -> 1) restarts over the stage (``reset_momentum``; otherwise it runs once over the
    whole run). ``stages``: ``[dict(granularity=0, iters=N0), dict(granularity=1, ...), ...]``.
    """

    decomposer = 'AnatomyDecomposerV2'

    def __init__(self, stages, reset_optimizer: bool = True, reset_scheduler: bool = True,
                 reset_momentum: bool = True):
        super().__init__(stages, reset_optimizer=reset_optimizer,
                         reset_scheduler=reset_scheduler)
        self.reset_momentum = bool(reset_momentum)

    def _set_granularity(self, runner, n: int) -> None:
        decomposers = find_transforms(runner.train_loop.dataloader.dataset, self.decomposer)
        if not decomposers:
            raise InvalidInputError(f'AnatomyStageHookV2: the training pipeline has no '
                                    f'{self.decomposer} transform to set the granularity of.')
        for d in decomposers:
            d.set_granularity(n)
        self._restart_dataloader(runner)

    def _apply(self, runner, idx: int, reset: bool) -> None:
        stage = self.stages[idx]
        self._set_granularity(runner, stage['granularity'])
        model = self._model(runner)
        if hasattr(model, 'ema_step'):
            if self.reset_momentum:
                model.momentum_iters = stage['iters']
                if reset:
                    model.ema_step.zero_()
            else:
                model.momentum_iters = self.total_iters
        if reset:
            self._reset_optim(runner, stage)
        self.current = idx
        runner.logger.info(
            f'AnatomyStageHookV2: stage {idx} from iteration {stage["start"]}: granularity '
            f'g={stage["granularity"]} (anchors of 1/{2 ** stage["granularity"]} of the image '
            f'side), {stage["iters"]} iterations'
            + ('; optimiser, schedules and teacher momentum reset' if reset else ''))
