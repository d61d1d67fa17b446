# SAM reference schedule (Yan et al., SAM, arXiv:2012.02383): SGD lr 0.02, momentum 0.9,
# weight decay 1e-4; linear warm-up over 500 iterations from 0.001 x lr, then constant;
# 20000 iterations (checkpoint every 1000, from default_runtime.py).
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.02, momentum=0.9, weight_decay=1e-4))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=20000)
