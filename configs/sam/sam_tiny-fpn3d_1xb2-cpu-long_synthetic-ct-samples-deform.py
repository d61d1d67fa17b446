# The long CPU run of SAM-tiny (issue "models that work"): the recipe of the shipped SAM
# (sam_tiny-fpn3d_1xb2-cpu-1000it_synthetic-ct-samples.py) plus a strong random deformation of
# every view (RandomViewDeformation: per-axis scale U(0.8, 1.25), +-10 degree rotations, a
# smooth displacement up to 12 mm), so that the two views of one scan differ in shape as two
# patients do, with the correspondence still exact. Runs for hours and continues from the last
# state of the chain (checkpoints/runs/README.md):
#
#   python tools/train.py configs/sam/sam_tiny-fpn3d_1xb2-cpu-long_synthetic-ct-samples-deform.py \
#       --cfg-options load_from=checkpoints/runs/<latest>.pth randomness.seed=<next>
_base_ = ['./sam_tiny-fpn3d_1xb2-cpu-1000it_synthetic-ct-samples.py']

view_deform = dict(type='RandomViewDeformation', prob=0.8, scales=(0.8, 1.25), degrees=10.0,
                   max_displacement=12.0, num_control_points=7)
deform_pipeline = [_base_.view_crop, view_deform, _base_.view_normalize, _base_.view_augment,
                   dict(type='PackSAMInputs')]
train_dataloader = dict(
    dataset=dict(datasets=[
        dict(_base_.train_dataloader.dataset.datasets[0], pipeline=deform_pipeline),
        dict(_base_.real_ct, dataset=dict(_base_.real_ct.dataset,
                                          pipeline=[dict(type='LoadVolume')] + deform_pipeline)),
    ]))
train_cfg = dict(type='IterBasedTrainLoop', max_iters=100000)
default_hooks = dict(checkpoint=dict(interval=100, max_keep_ckpts=5))
# An exponential moving average of the weights (horizon ~500 iterations): SGD at lr 0.02 on
# batches of 2 pairs makes single checkpoints noisy (the synthetic landmark error of the run
# moved 21.8 -> 26.6 mm between iterations 1600 and 1900). mmengine's EMAHook stores the
# averaged weights as the checkpoint's state_dict (the raw ones in ema_state_dict), so every
# tool and tools/publish_checkpoint.py use the average.
custom_hooks = [dict(type='EMAHook', momentum=0.002, priority='ABOVE_NORMAL')]
