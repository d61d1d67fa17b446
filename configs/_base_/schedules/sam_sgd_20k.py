# SAM reference schedule (SPEC 1.4): SGD 0.02, momentum 0.9, wd 1e-4, linear warm-up 500
# iterations from ratio 0.001, then constant (no scheduler needed after the warm-up); 20000 iterations; checkpoint every 1000.
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.02, momentum=0.9, weight_decay=1e-4))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=20000)
