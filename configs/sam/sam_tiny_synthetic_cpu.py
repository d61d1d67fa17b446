# A small SAM that trains on CPU in minutes on synthetic subjects generated on the fly
# (no data on disk). Same components as the reference, reduced width and negatives.
#
#   python tools/train.py configs/sam/sam_tiny_synthetic_cpu.py
#   tools/dist_train.sh configs/sam/sam_tiny_synthetic_cpu.py 2      # 2 CPU processes (gloo)
_base_ = [
    '../_base_/models/sam_tiny.py',
    '../_base_/datasets/sam_synthetic.py',
    '../_base_/schedules/sam_sgd_20k.py',
    '../_base_/default_runtime.py',
]
train_dataloader = dict(batch_size=2, num_workers=2)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=20),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=300)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=100, max_keep_ckpts=3))
log_processor = dict(window_size=10)
env_cfg = dict(dist_cfg=dict(backend='gloo'))
