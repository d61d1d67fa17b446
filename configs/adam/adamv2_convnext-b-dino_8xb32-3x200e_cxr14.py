# Adam v2 reference settings (Hosseinzadeh Taher, Gotway and Liang, "Representing part-whole
# hierarchies in foundation models by learning localizability, composability, and
# decomposability from anatomy via self-supervision", CVPR 2024) on ChestX-ray14 (75,312
# training radiographs), 8 GPUs x 32:
#
#   tools/dist_train.sh configs/adam/adamv2_convnext-b-dino_8xb32-3x200e_cxr14.py 8
#
# ConvNeXt-B (in_channels 3, 1024 features); DINO head 2048-2048-256 -> 65,536 prototypes
# (weight-normalised); student temperature 0.1, teacher 0.04, centre momentum 0.9; teacher =
# EMA of the student, momentum 0.996 -> 1 (cosine); losses localizability / composability /
# decomposability with weights 1 / 1 / 1; one global view (224 px) and 8 local crops (96 px)
# of each anchor; stages g = 0, 1, 2 (anchors of 1, 1/2, 1/4 of the image side).
# AdamW, lr 5e-4 x 256 / 256, 10 warm-up epochs then cosine to 1e-6; weight decay 0.04 -> 0.4
# (cosine); gradient clipping 3.0. Stage length: 200 epochs each, as the v1 reference
# (adam_r50-mlp_8xb32-3x200e_cxr14.py): an assumption, the stage lengths of the published run
# were not checked here. Expressed in iterations: 75,312 // 256 = 294 per epoch.
# This is the config released Adam v2 weights convert into
# (tools/model_converters/adam_to_mmanat.py).
_base_ = ['../_base_/default_runtime.py']

iters_per_epoch = 75312 // 256
iters_per_stage = 200 * iters_per_epoch
warmup_iters = 10 * iters_per_epoch
stages = [dict(granularity=0, iters=iters_per_stage), dict(granularity=1, iters=iters_per_stage),
          dict(granularity=2, iters=iters_per_stage)]
feat = 1024
num_prototypes = 65536
batch_size = 32  # per GPU; 8 GPUs -> 256

model = dict(
    type='AdamV2',
    backbone=dict(type='ConvNeXt', arch='base', in_channels=3, out_indices=(3, ),
                  gap_before_final_norm=True, drop_path_rate=0.1),
    head=dict(type='DINOHead', in_channels=feat, hid_channels=2048, bottleneck_channels=256,
              out_channels=num_prototypes),
    compose_head=dict(type='ComposeHead', in_channels=feat, hid_channels=2048),
    decompose_head=dict(type='DecomposeHead', in_channels=feat, hid_channels=2048),
    loss_loc=dict(type='LocalizabilityLoss', out_channels=num_prototypes, student_temp=0.1,
                  teacher_temp=0.04, center_momentum=0.9, loss_weight=1.0),
    loss_comp=dict(type='ComposabilityLoss', loss_weight=1.0),
    loss_dec=dict(type='DecomposabilityLoss', loss_weight=1.0),
    base_momentum=0.996, final_momentum=1.0, momentum_iters=iters_per_stage)

train_pipeline = [
    dict(type='AnatomyDecomposerV2', granularity=0),
    dict(type='AdamV2Views', global_size=224, local_size=96, num_local=8,
         global_scale=(0.4, 1.0), local_scale=(0.05, 0.4), rotation=10.0, brightness=0.4,
         contrast=0.4, jitter_prob=0.8, blur_sigma=(0.1, 2.0), blur_prob=0.5, mean=0.5,
         std=0.25, channels=3),
    dict(type='PackAdamV2Inputs'),
]
train_dataloader = dict(
    batch_size=batch_size,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(type='RadiographDataset', data_root='data/chestxray14',
                 ann_file='data/chestxray14/train_official.txt',
                 data_prefix=dict(img_path='images'), load_size=None,
                 pipeline=train_pipeline))

train_cfg = dict(type='IterBasedTrainLoop', max_iters=sum(s['iters'] for s in stages))
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=5e-4 * batch_size * 8 / 256, weight_decay=0.04),
    clip_grad=dict(max_norm=3.0),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0))
# written for stage 0; AnatomyStageHookV2 rebuilds them with end = each stage's length
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=warmup_iters),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=warmup_iters, end=iters_per_stage,
         eta_min=1e-6),
    dict(type='CosineAnnealingParamScheduler', param_name='weight_decay', by_epoch=False,
         begin=0, end=iters_per_stage, eta_min_ratio=10.0),
]
custom_hooks = [dict(type='AnatomyStageHookV2', stages=stages)]
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=iters_per_stage // 4,
                    max_keep_ckpts=8))
model_wrapper_cfg = dict(type='MMDistributedDataParallel', broadcast_buffers=False)
