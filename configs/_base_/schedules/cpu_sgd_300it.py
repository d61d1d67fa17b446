# The schedule and runtime of the small CPU recipes: the SAM optimiser (SGD 0.02, see
# sam_sgd_20k.py) with a 20-iteration linear warm-up, 300 iterations, a log line every 10
# iterations, a checkpoint every 100 and the gloo backend (tools/dist_train.sh CONFIG 2 runs two
# CPU processes). It includes default_runtime.py, so a config lists it instead of that file.
_base_ = ['./sam_sgd_20k.py', '../default_runtime.py']

param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=20),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=300)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=100, max_keep_ckpts=3))
log_processor = dict(window_size=10)
env_cfg = dict(dist_cfg=dict(backend='gloo'))
