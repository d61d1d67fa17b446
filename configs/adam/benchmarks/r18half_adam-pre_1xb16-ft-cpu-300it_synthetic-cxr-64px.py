# Fine-tuning Adam (Eve) on synthetic chest X-rays, CPU-sized: the linear-probe config with
# the whole network trained (lower learning rate, light augmentation: crops of 70-100 % of
# the area, +-7 degrees, brightness/contrast jitter; no flip).
#
#   python tools/train.py \
#       configs/adam/benchmarks/r18half_adam-pre_1xb16-ft-cpu-300it_synthetic-cxr-64px.py \
#       --cfg-options train_dataloader.dataset.label_fraction=1.0
_base_ = ['./r18half_adam-pre_1xb16-linear-cpu-300it_synthetic-cxr-64px.py']

model = dict(frozen_backbone=False, dropout=0.2)
train_pipeline = [
    dict(type='TwoViewXrayAugment', out_size={{_base_.view_size}}, scale=(0.7, 1.0),
         rotation=7.0, brightness=0.2, contrast=0.2, jitter_prob=0.5, blur_prob=0.0,
         mean=0.5, std=0.25, channels=1, num_views=1),
    dict(type='PackTwoViewInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
optim_wrapper = dict(optimizer=dict(lr=0.01, weight_decay=1e-4))
