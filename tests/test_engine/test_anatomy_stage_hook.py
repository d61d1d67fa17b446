"""AnatomyStageHook: granularity / pruner / optimiser / schedule per stage, with dataloader
workers, and resuming in the middle of a stage or exactly at a stage start."""
import os.path as osp
import sys

import pytest

from tests.helpers.adam_tiny import register_recorder, tiny_cfg, write_pngs  # noqa: E402

from mmanat.utils.exceptions import InvalidInputError  # noqa: E402


def run(cfg, resume_from=None):
    from mmengine.runner import Runner

    from mmanat.utils import allow_mmengine_checkpoint_globals
    allow_mmengine_checkpoint_globals()
    if resume_from:
        cfg = dict(cfg, resume=True, load_from=resume_from)
    runner = Runner.from_cfg(cfg)
    runner.train()
    return runner


@pytest.mark.slow
def test_stages_with_persistent_workers_and_resume(tmp_path):
    img_dir = write_pngs(tmp_path / 'imgs', n=8)
    rec = register_recorder()
    rec.log = []
    cfg = tiny_cfg(img_dir, tmp_path / 'w', stages=((0, 2), (2, 3), (4, 2)), num_workers=1,
                   checkpoint_interval=1, extra_hooks=[dict(type='AdamRecorderHook')])
    run(cfg)
    log = list(rec.log)
    assert [e['grans'] for e in log] == [[0]] * 2 + [[2]] * 3 + [[4]] * 2
    # optimiser state is empty exactly at the stage starts (iterations 0, 2, 5)
    assert [e['n_state'] == 0 for e in log] == [True, False, True, False, False, True, False]
    lrs = [e['lr'] for e in log]
    assert lrs[0] == lrs[2] == lrs[5] == pytest.approx(0.03)  # schedule restarts
    assert lrs[3] < lrs[2] and lrs[4] < lrs[3] and lrs[6] < lrs[5]
    # stage 1 (3 iterations): the cosine is rebuilt for 3 steps
    assert lrs[3] == pytest.approx(0.03 * (1 + 0.5) / 2)
    assert [e['prune'] for e in log] == [False, False, True, True, True, True, True]

    # resume in the middle of stage 1 (after iteration 4 of 7): no reset, stage 1 restored
    rec.log = []
    run(dict(cfg, work_dir=str(tmp_path / 'w2')), osp.join(str(tmp_path / 'w'), 'iter_4.pth'))
    assert [e['grans'] for e in rec.log] == [[2], [4], [4]]
    assert rec.log[0]['n_state'] > 0 and rec.log[0]['lr'] == pytest.approx(lrs[4])
    assert rec.log[1]['n_state'] == 0 and rec.log[1]['lr'] == pytest.approx(0.03)
    # resume exactly at the start of stage 2 (checkpoint after iteration 5): reset applied
    rec.log = []
    run(dict(cfg, work_dir=str(tmp_path / 'w3')), osp.join(str(tmp_path / 'w'), 'iter_5.pth'))
    assert [e['grans'] for e in rec.log] == [[4], [4]]
    assert rec.log[0]['n_state'] == 0 and rec.log[0]['lr'] == pytest.approx(0.03)


def test_bad_stages():
    from mmanat.engine.hooks import AnatomyStageHook
    with pytest.raises(InvalidInputError):
        AnatomyStageHook(stages=[])
    with pytest.raises(InvalidInputError):
        AnatomyStageHook(stages=[dict(granularity=2, iters=0)])
    h = AnatomyStageHook(stages=[dict(granularity=0, iters=3), dict(granularity=2, iters=2)])
    assert [h.stage_at(i) for i in range(6)] == [0, 0, 0, 1, 1, 1]
