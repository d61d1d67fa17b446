# Adam reference settings (Hosseinzadeh Taher et al., "Towards foundation models learned from
# anatomy in medical imaging via self-supervision", DART 2023, arXiv:2309.15358) on
# ChestX-ray14 (75,312 training radiographs). Short name: configs/adam/adam_r50_cxr.py.
# ResNet-50 (mmdet) + MLP head 2048-2048-128, momentum encoder m = 0.999, queue K = 65536,
# T = 0.2, Purposive Pruner threshold 0.8 for n > 0, stages n = 0, 2, 4.
# SGD lr 0.03, momentum 0.9, wd 1e-4, total batch 256 (32 per GPU x 8 GPUs:
# `tools/dist_train.sh configs/adam/adam_r50_cxr.py 8`), 200 epochs per stage.
# Expressed in iterations: 75,312 // 256 = 294 iterations per epoch, x 200 = 58,800 per stage,
# 176,400 in all; the cosine decay is applied per iteration over each stage (per-epoch steps
# in the paper; the difference is negligible). AnatomyStageHook restarts the schedule and
# the optimiser at each stage; encoders, queue and pointer carry over.
_base_ = ['../_base_/default_runtime.py']

iters_per_stage = 200 * (75312 // 256)
stages = [dict(granularity=0, iters=iters_per_stage), dict(granularity=2, iters=iters_per_stage),
          dict(granularity=4, iters=iters_per_stage)]

model = dict(
    type='Adam',
    backbone=dict(type='mmdet.ResNet', depth=50, in_channels=3, num_stages=4,
                  out_indices=(3, ), norm_eval=False, style='pytorch'),
    neck=dict(type='MoCoMLPNeck', in_channels=2048, hid_channels=2048, out_channels=128),
    loss=dict(type='PrunedInfoNCELoss', temperature=0.2, prune_threshold=0.8),
    queue_len=65536, feat_dim=128, momentum=0.999, prune=False, shuffle_bn=True)

train_pipeline = [
    dict(type='AnatomyDecomposer', granularity=0),
    dict(type='TwoViewXrayAugment', out_size=224, scale=(0.2, 1.0), rotation=30.0,
         brightness=0.4, contrast=0.4, jitter_prob=0.8, blur_sigma=(0.1, 2.0),
         blur_prob=0.5, mean=0.5, std=0.25, channels=3),
    dict(type='PackTwoViewInputs'),
]
train_dataloader = dict(
    batch_size=32,  # per GPU; 8 GPUs -> 256
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(type='RadiographDataset', data_root='data/chestxray14',
                 ann_file='data/chestxray14/train_official.txt',
                 data_prefix=dict(img_path='images'),
                 load_size=None,  # 1024 px PNGs; load_size=512 halves decoding time
                 pipeline=train_pipeline))

train_cfg = dict(type='IterBasedTrainLoop', max_iters=sum(s['iters'] for s in stages))
optim_wrapper = dict(type='OptimWrapper',
                     optimizer=dict(type='SGD', lr=0.03, momentum=0.9, weight_decay=1e-4))
param_scheduler = [dict(type='CosineAnnealingLR', by_epoch=False, begin=0,
                        end=iters_per_stage, eta_min=0.0)]
custom_hooks = [dict(type='AnatomyStageHook', stages=stages)]
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=iters_per_stage // 4,
                    max_keep_ckpts=8))
model_wrapper_cfg = dict(type='MMDistributedDataParallel', broadcast_buffers=False)
