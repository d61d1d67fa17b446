# The long CPU run of SAM-tiny (hours, continued from run to run): the recipe of the shipped SAM
# (sam_tiny-fpn3d_1xb2-cpu-1000it_synthetic-ct-samples.py) continued at a lower learning rate
# with an exponential moving average of the weights. Each run starts from the last state of the
# chain (checkpoints/runs/README.md) with a new seed:
#
#   python tools/train.py configs/sam/sam_tiny-fpn3d_1xb2-cpu-long_synthetic-ct-samples.py \
#       --cfg-options load_from=checkpoints/sam_default.pth randomness.seed=<next>
#
# Why: continuing at lr 0.02 made single checkpoints worse, not better (synthetic CT landmark
# error 21.8 mm at iteration 1600, 26.6 mm at 1900). mmengine's EMAHook stores the averaged
# weights (horizon ~500 iterations) as the checkpoint's state_dict (the raw ones in
# ema_state_dict), so every tool and tools/publish_checkpoint.py use the average.
_base_ = ['./sam_tiny-fpn3d_1xb2-cpu-1000it_synthetic-ct-samples.py']

optim_wrapper = dict(optimizer=dict(lr=0.005))
custom_hooks = [dict(type='EMAHook', momentum=0.002, priority='ABOVE_NORMAL')]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=100000)
default_hooks = dict(checkpoint=dict(interval=100, max_keep_ckpts=5))
