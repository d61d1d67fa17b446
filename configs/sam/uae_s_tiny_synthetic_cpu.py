# A small UAE-S that trains on CPU in minutes on synthetic subjects generated on the fly:
# the quarter-width SAM network (configs/_base_/models/sam_tiny.py, 32-d embeddings) plus a
# semantic head of the same size; subjects drawn at 4 mm (fast to generate), intra views
# (32, 96, 96) and inter crops (48, 96, 96) sampled at 2 mm; 2 intra + 1 inter pair per
# batch and process.
#
#   python tools/train.py configs/sam/uae_s_tiny_synthetic_cpu.py
#   tools/dist_train.sh configs/sam/uae_s_tiny_synthetic_cpu.py 2     # 2 CPU processes, gloo
_base_ = [
    '../_base_/models/sam_tiny.py',
    '../_base_/datasets/uae_s_synthetic.py',
    '../_base_/schedules/sam_sgd_20k.py',
    '../_base_/default_runtime.py',
]
model = dict(
    type='UAES',
    data_preprocessor=dict(type='UAESDataPreprocessor', pad_size_divisor=(4, 16, 16)),
    semantic_head=dict(
        type='FPN3D', in_channels=(16, 32, 64), out_channels=32,
        conv_cfg=dict(type='Conv3d')),
    semantic_levels=(0, 1, 2),
    semantic_stride=(2, 2, 2),
    loss_semantic=dict(type='SupConMeanLoss', temperature=0.1, loss_weight=1.0),
    semantic_prob=0.4,
    branch_seed=None)
model_wrapper_cfg = dict(
    type='MMDistributedDataParallel', broadcast_buffers=False, find_unused_parameters=True)

tiny_subjects = dict(type='SyntheticSubjectDataset', num_subjects=200, base_seed=0,
                     modalities=('CT', ), spacing=4.0)
train_dataloader = dict(
    batch_size=3,                 # 2 intra + 1 inter pair
    num_workers=2,
    dataset=dict(
        type='ConcatDataset',
        ignore_keys=['dataset_type'],
        datasets=[
            dict(tiny_subjects, pipeline={{_base_.uae_s_intra_pipeline}}),
            dict(type='CrossSubjectPairDataset', source=tiny_subjects,
                 crop_size=(48, 96, 96), spacing=2.0,
                 view_pipeline={{_base_.uae_s_inter_view_pipeline}},
                 pipeline=[dict(type='PackSAMInputs')]),
        ]))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=20),
    dict(type='ConstantLR', factor=1.0, by_epoch=False, begin=20),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=300)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=100, max_keep_ckpts=3))
log_processor = dict(window_size=10)
env_cfg = dict(dist_cfg=dict(backend='gloo'))
