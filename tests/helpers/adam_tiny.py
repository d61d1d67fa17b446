"""A tiny Adam set-up shared by the Adam tests: a folder of small PNG radiographs and an
mmengine config dict of a very small model (trains a few iterations in seconds)."""
import os.path as osp

import numpy as np


def write_pngs(folder, n=8, size=64, seed=0):
    """``n`` random smooth ``size x size`` 8-bit PNGs in ``folder``; returns the folder."""
    import os

    import cv2
    os.makedirs(str(folder), exist_ok=True)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] / size
    for i in range(n):
        a = rng.uniform(0.2, 1.0, 4)
        img = 0.5 + 0.25 * np.sin(6 * a[0] * xx + 3 * a[1]) * np.cos(5 * a[2] * yy + a[3])
        img += 0.1 * rng.normal(size=img.shape)
        cv2.imwrite(osp.join(str(folder), f'img_{i:03d}.png'),
                    np.clip(img * 255, 0, 255).astype(np.uint8))
    return str(folder)


def tiny_cfg(img_dir, work_dir, stages=((0, 2), (2, 2), (4, 2)), batch_size=4,
             queue_len=24, num_workers=0, checkpoint_interval=1000, extra_hooks=()):
    """mmengine Runner config dict: tiny ResNet-18 (4 base channels), 32-px views."""
    stages = [dict(granularity=n, iters=it) for n, it in stages]
    max_iters = sum(s['iters'] for s in stages)
    pipeline = [
        dict(type='AnatomyDecomposer', granularity=0),
        dict(type='TwoViewXrayAugment', out_size=32, blur_sigma=(0.05, 0.5)),
        dict(type='PackTwoViewInputs'),
    ]
    return dict(
        default_scope='mmanat',
        work_dir=str(work_dir),
        model=dict(type='Adam',
                   backbone=dict(type='mmdet.ResNet', depth=18, in_channels=1, base_channels=4,
                                 out_indices=(3, ), norm_eval=False),
                   neck=dict(type='MoCoMLPNeck', in_channels=32, hid_channels=32,
                             out_channels=16),
                   loss=dict(type='PrunedInfoNCELoss', temperature=0.2, prune_threshold=0.8),
                   queue_len=queue_len, feat_dim=16, momentum=0.9),
        train_dataloader=dict(batch_size=batch_size, num_workers=num_workers,
                              persistent_workers=num_workers > 0,
                              sampler=dict(type='InfiniteSampler', shuffle=True),
                              dataset=dict(type='RadiographDataset', ann_file=img_dir,
                                           cache_images=True, pipeline=pipeline)),
        train_cfg=dict(type='IterBasedTrainLoop', max_iters=max_iters),
        optim_wrapper=dict(type='OptimWrapper',
                           optimizer=dict(type='SGD', lr=0.03, momentum=0.9,
                                          weight_decay=1e-4)),
        param_scheduler=[dict(type='CosineAnnealingLR', by_epoch=False, begin=0,
                              end=stages[0]['iters'])],
        custom_hooks=[dict(type='AnatomyStageHook', stages=stages)] + list(extra_hooks),
        default_hooks=dict(
            logger=dict(type='LoggerHook', interval=1),
            checkpoint=dict(type='CheckpointHook', by_epoch=False,
                            interval=checkpoint_interval)),
        model_wrapper_cfg=dict(type='MMDistributedDataParallel', broadcast_buffers=False),
        env_cfg=dict(dist_cfg=dict(backend='gloo')),
        randomness=dict(seed=0),
        log_level='WARNING',
    )


def register_recorder():
    """Register (once) ``AdamRecorderHook``: per training iteration it records the AD
    granularity of the batch, the lr, the optimiser-state size at the iteration start, the
    pruner switch and the queue pointer after the iteration."""
    from mmengine.hooks import Hook
    from mmengine.model import is_model_wrapper

    from mmanat.registry import HOOKS
    if 'AdamRecorderHook' in HOOKS.module_dict:
        return HOOKS.get('AdamRecorderHook')

    @HOOKS.register_module()
    class AdamRecorderHook(Hook):
        priority = 'LOWEST'
        log = []

        def before_train_iter(self, runner, batch_idx, data_batch=None):
            opt = runner.optim_wrapper.optimizer
            model = runner.model.module if is_model_wrapper(runner.model) else runner.model
            self._entry = dict(prune=bool(model.prune), iter=runner.iter,
                               lr=opt.param_groups[0]['lr'],
                               n_state=len(opt.state),
                               grans=sorted({s.ad_cell[2] for s in data_batch['data_samples']}))

        def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
            model = runner.model.module if is_model_wrapper(runner.model) else runner.model
            self._entry.update(ptr=int(model.queue_ptr.item()))
            type(self).log.append(self._entry)

    return AdamRecorderHook
