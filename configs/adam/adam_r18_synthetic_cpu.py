# Adam (SPEC 4) on synthetic chest X-rays: half-width ResNet-18, 64-pixel views, queue of 1024
# keys. Stages n = 0, 2, 4 (150 + 100 + 100 iterations) in one run via AnatomyStageHook.
# Measured on the shared 2-core CPU: 1.3-3 s per iteration (350 iterations: 8-15 minutes).
# The first run renders the 128 radiographs (about 1 s each) into
# data/synthetic_xray_cache; later runs read them from there.
# Deviations from the reference (configs/adam/adam_r50_cxr.py), for CPU:
# - ResNet-18 at half width (base_channels 32: 2.8 M parameters, so the shipped checkpoint
#   with both encoders stays under 20 MB) and head 256-512-128; K = 1024; batch 32;
# - lr 0.005 (the reference 0.03 is for batch 256; at batch 32 it collapsed every embedding
#   onto one direction within 150 iterations: loss at log(K + 1), and from n = 2 on the
#   pruner removed the whole bank);
# - BatchNorm in the projection head (MoCo v3 style; with the plain MoCo v2 head every
#   embedding had cosine > 0.998 with every other after 350 iterations);
# - momentum m = 0.99 (0.999 barely moves the key encoder in a few hundred iterations);
# - blur sigma scaled to the 64-pixel views.
_base_ = ['../_base_/default_runtime.py']

stages = [dict(granularity=0, iters=150), dict(granularity=2, iters=100),
          dict(granularity=4, iters=100)]
max_iters = sum(s['iters'] for s in stages)

model = dict(
    type='Adam',
    backbone=dict(type='mmdet.ResNet', depth=18, in_channels=1, base_channels=32, num_stages=4,
                  out_indices=(3, ), norm_eval=False, style='pytorch'),
    neck=dict(type='MoCoMLPNeck', in_channels=256, hid_channels=512, out_channels=128,
              with_bn=True),
    loss=dict(type='PrunedInfoNCELoss', temperature=0.2, prune_threshold=0.8),
    queue_len=1024, feat_dim=128, momentum=0.99, prune=False, shuffle_bn=False)

view_size = 64
train_pipeline = [
    dict(type='AnatomyDecomposer', granularity=0),
    dict(type='TwoViewXrayAugment', out_size=view_size, scale=(0.2, 1.0), rotation=30.0,
         brightness=0.4, contrast=0.4, jitter_prob=0.8, blur_sigma=(0.03, 0.6),
         blur_prob=0.5, mean=0.5, std=0.25, channels=1),
    dict(type='PackTwoViewInputs'),
]
train_dataloader = dict(
    batch_size=32,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(type='SyntheticRadiographDataset', num_samples=128, base_seed=0,
                 spacing=4.0, img_size=96, cache_images=True,
                 cache_dir='data/synthetic_xray_cache', pipeline=train_pipeline))

train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters)
optim_wrapper = dict(type='OptimWrapper',
                     optimizer=dict(type='SGD', lr=0.005, momentum=0.9, weight_decay=1e-4))
# written for stage 0; AnatomyStageHook rebuilds it with end = each stage's length
param_scheduler = [dict(type='CosineAnnealingLR', by_epoch=False, begin=0, end=stages[0]['iters'],
                        eta_min=0.0)]
custom_hooks = [dict(type='AnatomyStageHook', stages=stages)]
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=max_iters, max_keep_ckpts=1))
log_processor = dict(window_size=10)
# keys are gathered from every rank, so the queue buffer needs no broadcast
model_wrapper_cfg = dict(type='MMDistributedDataParallel', broadcast_buffers=False)
env_cfg = dict(dist_cfg=dict(backend='gloo'))
randomness = dict(seed=0)
