# Fine-tuning Adam (ResNet-50) on ChestX-ray14: the linear-probe config with the whole network
# trained, light augmentation (no flip), mean ROC AUC on the official test list.
#
#   tools/dist_train.sh configs/adam/benchmarks/r50_adam-pre_8xb64-ft-coslr-30e_cxr14.py 8 \
#       --cfg-options model.pretrained=work_dirs/adam_r50_cxr/iter_N.pth \
#       train_dataloader.dataset.label_fraction=0.1        # 1 / 10 / 100 % labels
_base_ = ['./r50_adam-pre_8xb64-linear-coslr-100e_cxr14.py']

model = dict(frozen_backbone=False, dropout=0.2)
train_pipeline = [
    dict(type='TwoViewXrayAugment', out_size=224, scale=(0.7, 1.0), rotation=7.0,
         brightness=0.2, contrast=0.2, jitter_prob=0.5, blur_prob=0.0, mean=0.5, std=0.25,
         channels=3, num_views=1),
    dict(type='PackTwoViewInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
train_cfg = dict(max_epochs=30, val_interval=1)
optim_wrapper = dict(optimizer=dict(lr=0.01, weight_decay=1e-4))
param_scheduler = [dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=30)]
default_hooks = dict(checkpoint=dict(interval=1))
