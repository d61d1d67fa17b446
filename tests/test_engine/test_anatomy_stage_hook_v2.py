"""AnatomyStageHookV2 in a real (tiny) Runner: granularities g = 0, 1, 2 reach the batches,
the teacher momentum schedule restarts per stage, the learning rate warms up again and the
weight decay follows its cosine 0.04 -> 0.4 within each stage (zero-decay groups stay 0)."""
import pytest

from tests.helpers.adam_tiny import write_pngs


def tiny_v2_cfg(img_dir, work_dir, stages=((0, 3), (1, 3), (2, 3))):
    stages = [dict(granularity=g, iters=it) for g, it in stages]
    pipeline = [dict(type='AnatomyDecomposerV2', granularity=0),
                dict(type='AdamV2Views', global_size=32, local_size=16, num_local=2,
                     blur_sigma=(0.05, 0.5)),
                dict(type='PackAdamV2Inputs')]
    first = stages[0]['iters']
    return dict(
        default_scope='mmanat', work_dir=str(work_dir),
        model=dict(type='AdamV2',
                   backbone=dict(type='mmdet.ResNet', depth=18, in_channels=1, base_channels=4,
                                 out_indices=(3, ), norm_eval=False),
                   head=dict(type='DINOHead', in_channels=32, hid_channels=16,
                             bottleneck_channels=8, out_channels=16),
                   compose_head=dict(type='ComposeHead', in_channels=32, hid_channels=16),
                   decompose_head=dict(type='DecomposeHead', in_channels=32, hid_channels=16),
                   loss_loc=dict(type='LocalizabilityLoss', out_channels=16),
                   momentum_iters=first),
        train_dataloader=dict(batch_size=2, num_workers=0,
                              sampler=dict(type='InfiniteSampler', shuffle=True),
                              dataset=dict(type='RadiographDataset', ann_file=img_dir,
                                           cache_images=True, pipeline=pipeline)),
        train_cfg=dict(type='IterBasedTrainLoop', max_iters=sum(s['iters'] for s in stages)),
        optim_wrapper=dict(type='OptimWrapper',
                           optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.04),
                           clip_grad=dict(max_norm=3.0),
                           paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0)),
        param_scheduler=[
            dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=2),
            dict(type='CosineAnnealingLR', by_epoch=False, begin=2, end=first, eta_min=0.0),
            dict(type='CosineAnnealingParamScheduler', param_name='weight_decay',
                 by_epoch=False, begin=0, end=first, eta_min_ratio=10.0)],
        custom_hooks=[dict(type='AnatomyStageHookV2', stages=stages),
                      dict(type='AdamV2RecorderHook')],
        default_hooks=dict(logger=dict(type='LoggerHook', interval=1),
                           checkpoint=dict(type='CheckpointHook', by_epoch=False,
                                           interval=1000)),
        env_cfg=dict(dist_cfg=dict(backend='gloo')), randomness=dict(seed=0),
        log_level='WARNING')


def register_recorder():
    from mmengine.hooks import Hook

    from mmanat.registry import HOOKS
    if 'AdamV2RecorderHook' in HOOKS.module_dict:
        return HOOKS.get('AdamV2RecorderHook')

    @HOOKS.register_module()
    class AdamV2RecorderHook(Hook):
        priority = 'LOWEST'
        records = []

        def before_train_iter(self, runner, batch_idx, data_batch=None):
            groups = runner.optim_wrapper.optimizer.param_groups
            decays = sorted({round(g['weight_decay'], 6) for g in groups})
            self.records.append(dict(
                g={s.metainfo['ad_granularity'] for s in data_batch['data_samples']},
                lr=groups[0]['lr'], wd=decays, step=int(runner.model.ema_step),
                miters=runner.model.momentum_iters))

    return AdamV2RecorderHook


@pytest.mark.slow
def test_three_stages_in_one_run(tmp_path):
    from mmengine.runner import Runner
    rec = register_recorder()
    rec.records.clear()
    cfg = tiny_v2_cfg(write_pngs(tmp_path / 'imgs', n=6, size=64), tmp_path / 'work')
    Runner.from_cfg(cfg).train()
    r = rec.records
    assert [x['g'] for x in r] == [{0}] * 3 + [{1}] * 3 + [{2}] * 3
    assert [x['step'] for x in r] == [0, 1, 2] * 3  # EMA schedule restarts per stage
    assert all(x['miters'] == 3 for x in r)
    lrs = [x['lr'] for x in r]
    assert lrs[0] == pytest.approx(1e-4) and lrs[3] == pytest.approx(1e-4)  # warm-up again
    assert lrs[1] > lrs[0]
    for k in (0, 3, 6):
        assert r[k]['wd'] == pytest.approx([0.0, 0.04])  # no decay on norms and biases
        assert r[k + 1]['wd'][1] == pytest.approx(0.04 + 0.36 * 0.25)  # cosine, 1/3 of stage
        assert r[k + 2]['wd'][1] == pytest.approx(0.04 + 0.36 * 0.75)


def test_stage_shorter_than_warmup_is_refused_before_training(tmp_path):
    """A later stage of 2 iterations with a 2-iteration warm-up would crash mmengine's
    scheduler mid-run; the hook refuses it in before_train, naming the stage and the fix."""
    from mmengine.runner import Runner

    from mmanat.utils.exceptions import InvalidInputError
    register_recorder()
    cfg = tiny_v2_cfg(write_pngs(tmp_path / 'imgs', n=4, size=64), tmp_path / 'work',
                      stages=((0, 3), (1, 2)))
    runner = Runner.from_cfg(cfg)
    with pytest.raises(InvalidInputError, match=r'stage 1 has 2 iterations.*warm-up'):
        runner.train()
    assert runner.iter == 0  # nothing was trained
