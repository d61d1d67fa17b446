# Adam v2 (Hosseinzadeh Taher et al., "Representing part-whole hierarchies in foundation
# models by learning localizability, composability, and decomposability from anatomy via
# self-supervision", CVPR 2024) on synthetic chest X-rays, sized for a CPU. Stages g = 0, 1, 2
# (anchors of 1, 1/2, 1/4 of the image side; 100 iterations each) in one run via
# AnatomyStageHookV2. Shares data and backbone with the v1 CPU config
# (adam_r18half-mlp_1xb32-cpu-350it_synthetic-cxr-64px.py), so the two compare directly.
#
#   python tools/train.py configs/adam/adamv2_r18half-dino_1xb8-cpu-300it_synthetic-cxr-64px.py
#   tools/dist_train.sh configs/adam/adamv2_r18half-dino_1xb8-cpu-300it_synthetic-cxr-64px.py 2
#
# Deviations from the reference (adamv2_convnext-b-dino_8xb32-3x200e_cxr14.py):
# - half-width ResNet-18 (256 features) instead of ConvNeXt-B, as the v1 CPU model;
# - DINO head 256 - 512 - 512 - 128 onto 4,096 prototypes (reference 2048-2048-256, 65,536);
#   compose / decompose heads 512 wide;
# - views of 64 px (global) and 32 px (8 local crops), blur scaled to them;
# - batch 8 (about 4 s per iteration on one core), lr 5e-4 x 8 / 256 x 8 = 1.25e-4 (the
#   linear scaling rule alone gives 1.6e-5, too small to move in 100 iterations), warm-up 10
#   iterations per stage instead of 10 epochs.
_base_ = ['../_base_/default_runtime.py']

stages = [dict(granularity=0, iters=100), dict(granularity=1, iters=100),
          dict(granularity=2, iters=100)]
max_iters = sum(s['iters'] for s in stages)
feat = 256
num_prototypes = 4096
batch_size = 8
warmup_iters = 10

model = dict(
    type='AdamV2',
    backbone=dict(type='mmdet.ResNet', depth=18, in_channels=1, base_channels=32, num_stages=4,
                  out_indices=(3, ), norm_eval=False, style='pytorch'),
    head=dict(type='DINOHead', in_channels=feat, hid_channels=512, bottleneck_channels=128,
              out_channels=num_prototypes),
    compose_head=dict(type='ComposeHead', in_channels=feat, hid_channels=512),
    decompose_head=dict(type='DecomposeHead', in_channels=feat, hid_channels=512),
    loss_loc=dict(type='LocalizabilityLoss', out_channels=num_prototypes, student_temp=0.1,
                  teacher_temp=0.04, center_momentum=0.9, loss_weight=1.0),
    loss_comp=dict(type='ComposabilityLoss', loss_weight=1.0),
    loss_dec=dict(type='DecomposabilityLoss', loss_weight=1.0),
    base_momentum=0.996, final_momentum=1.0, momentum_iters=stages[0]['iters'])

view_size = 64
train_pipeline = [
    dict(type='AnatomyDecomposerV2', granularity=0),
    dict(type='AdamV2Views', global_size=view_size, local_size=32, num_local=8,
         global_scale=(0.4, 1.0), local_scale=(0.05, 0.4), rotation=10.0, brightness=0.4,
         contrast=0.4, jitter_prob=0.8, blur_sigma=(0.03, 0.6), blur_prob=0.5, mean=0.5,
         std=0.25, channels=1),
    dict(type='PackAdamV2Inputs'),
]
train_dataloader = dict(
    batch_size=batch_size,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(type='SyntheticRadiographDataset', num_samples=128, base_seed=0,
                 spacing=4.0, img_size=96, cache_images=True,
                 cache_dir='data/synthetic_xray_cache', pipeline=train_pipeline))

train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters)
# AdamW, gradient clipping 3.0; no weight decay on biases and normalisation layers (DINO)
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=5e-4 * batch_size / 256 * 8, weight_decay=0.04),
    clip_grad=dict(max_norm=3.0),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0))
# written for stage 0; AnatomyStageHookV2 rebuilds them with end = each stage's length.
# Weight decay 0.04 -> 0.4 on a cosine (eta_min_ratio 10 keeps the zero-decay groups at 0).
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=warmup_iters),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=warmup_iters, end=stages[0]['iters'],
         eta_min=1e-6),
    dict(type='CosineAnnealingParamScheduler', param_name='weight_decay', by_epoch=False,
         begin=0, end=stages[0]['iters'], eta_min_ratio=10.0),
]
custom_hooks = [dict(type='AnatomyStageHookV2', stages=stages)]
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=max_iters, max_keep_ckpts=1))
log_processor = dict(window_size=10)
# the teacher is an EMA of the DDP-synchronised student, so equal on every rank
model_wrapper_cfg = dict(type='MMDistributedDataParallel', broadcast_buffers=False)
env_cfg = dict(dist_cfg=dict(backend='gloo'))
randomness = dict(seed=0)
