# Adam (Hosseinzadeh Taher et al., "Towards foundation models learned from anatomy in medical
# imaging via self-supervision", DART 2023, arXiv:2309.15358) on synthetic chest X-rays, sized
# for a CPU: half-width ResNet-18, 64-pixel views, queue of 1024 keys, batch 32 in one process.
# Stages n = 0, 2, 4 (150 + 100 + 100 iterations) in one run via AnatomyStageHook. The first
# run renders the 128 radiographs into data/synthetic_xray_cache; later runs read them there.
#
#   python tools/train.py configs/adam/adam_r18half-mlp_1xb32-cpu-350it_synthetic-cxr-64px.py
#
# Deviations from the reference (configs/adam/adam_r50-mlp_8xb32-3x200e_cxr14.py):
# - ResNet-18 at half width (base_channels 32) and head 256-512-128, K = 1024, batch 32: the
#   checkpoint with both encoders stays under 20 MB;
# - lr 0.005: the reference 0.03 is for batch 256 and collapses every embedding at batch 32;
# - BatchNorm in the projection head (MoCo v3 style): the plain MoCo v2 head collapses here;
# - momentum m = 0.99: 0.999 barely moves the key encoder in a few hundred iterations;
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
