# Linear probe of Adam (Eve; downstream evaluation of arXiv:2309.15358) on synthetic chest
# X-rays, CPU-sized. The half-width ResNet-18 of checkpoints/adam_default.pth is frozen
# (BatchNorm statistics included);
# a BatchNorm1d (no affine) + linear layer learns the 3 synthetic labels
# (lesion, wide_body, large_belly). Metric: mean ROC AUC on 100 held-out subjects.
#
#   python tools/train.py \
#       configs/adam/benchmarks/r18half_adam-pre_1xb16-linear-cpu-300it_synthetic-cxr-64px.py
#   python tools/train.py \
#       configs/adam/benchmarks/r18half_adam-pre_1xb16-linear-cpu-300it_synthetic-cxr-64px.py \
#       --cfg-options train_dataloader.dataset.label_fraction=0.01 \
#       model.pretrained=work_dirs/adam_r18/iter_350.pth
#
# train_dataloader.dataset.label_fraction: 0.01 / 0.1 / 1.0 keeps that share of the 400
# training subjects (a seeded subset; default 0.1).
_base_ = ['../../_base_/default_runtime.py']

view_size = 64
model = dict(
    type='RadiographClassifier',
    backbone=dict(type='mmdet.ResNet', depth=18, in_channels=1, base_channels=32, num_stages=4,
                  out_indices=(3, ), norm_eval=False, style='pytorch'),
    in_channels=256,
    num_classes=3,
    frozen_backbone=True,
    feat_norm=True,
    pretrained='checkpoints/adam_default.pth')

# deterministic: the whole radiograph resized to the network input, normalised as in Adam
test_pipeline = [
    dict(type='TwoViewXrayAugment', out_size=view_size, scale=(1.0, 1.0), ratio=(1.0, 1.0),
         rotation=0.0, jitter_prob=0.0, blur_prob=0.0, mean=0.5, std=0.25, channels=1,
         num_views=1),
    dict(type='PackTwoViewInputs'),
]
train_pipeline = test_pipeline
xray = dict(type='SyntheticRadiographDataset', spacing=4.0, img_size=96, cache_images=True,
            cache_dir='data/synthetic_xray_cache')
train_dataloader = dict(
    batch_size=16,
    num_workers=0,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(xray, num_samples=400, base_seed=10000, label_fraction=0.1,
                 pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=32,
    num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(xray, num_samples=100, base_seed=20000, test_mode=True,
                 pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='MultiLabelAUC')
test_evaluator = val_evaluator

max_iters = 300
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(type='OptimWrapper',
                     optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=0.0))
param_scheduler = [dict(type='CosineAnnealingLR', by_epoch=False, begin=0, end=max_iters)]
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=max_iters,
                    max_keep_ckpts=1, save_best='cls/mAUC', rule='greater'))
log_processor = dict(window_size=10)
env_cfg = dict(dist_cfg=dict(backend='gloo'))
randomness = dict(seed=0)
