# Linear probe of Adam (ResNet-50, configs/adam/adam_r50_cxr.py) on ChestX-ray14: frozen
# backbone, BatchNorm1d + linear layer over the 14 labels, mean ROC AUC on the official test
# list. Images under data/chestxray14/images, lists in ChestX-ray14's format.
#
#   tools/dist_train.sh configs/adam/benchmarks/r50_adam-pre_8xb64-linear-coslr-100e_cxr14.py 8 \
#       --cfg-options model.pretrained=work_dirs/adam_r50_cxr/iter_N.pth \
#       train_dataloader.dataset.label_fraction=0.1        # 1 / 10 / 100 % labels
_base_ = ['../../_base_/default_runtime.py']

model = dict(
    type='RadiographClassifier',
    backbone=dict(type='mmdet.ResNet', depth=50, in_channels=3, num_stages=4,
                  out_indices=(3, ), norm_eval=False, style='pytorch'),
    in_channels=2048,
    num_classes=14,
    frozen_backbone=True,
    feat_norm=True,
    pretrained='work_dirs/adam_r50_cxr/latest.pth')

test_pipeline = [
    dict(type='TwoViewXrayAugment', out_size=224, scale=(1.0, 1.0), ratio=(1.0, 1.0),
         rotation=0.0, jitter_prob=0.0, blur_prob=0.0, mean=0.5, std=0.25, channels=3,
         num_views=1),
    dict(type='PackTwoViewInputs'),
]
train_pipeline = test_pipeline
cxr14 = dict(type='RadiographDataset', data_root='data/chestxray14',
             data_prefix=dict(img_path='images'), load_size=256)
train_dataloader = dict(
    batch_size=64,  # per GPU
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(cxr14, ann_file='train_official.txt', label_fraction=1.0,
                 pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=128,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(cxr14, ann_file='val_official.txt', test_mode=True, pipeline=test_pipeline))
test_dataloader = dict(val_dataloader,
                       dataset=dict(cxr14, ann_file='test_official.txt', test_mode=True,
                                    pipeline=test_pipeline))
val_evaluator = dict(type='MultiLabelAUC')
test_evaluator = val_evaluator

train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=100, val_interval=5)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(type='OptimWrapper',
                     optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=0.0))
param_scheduler = [dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=100)]
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(type='CheckpointHook', interval=5, max_keep_ckpts=2,
                    save_best='cls/mAUC', rule='greater'))
