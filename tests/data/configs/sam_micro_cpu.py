# The smallest SAM run that exercises the whole training path (tests only): synthetic
# subjects at 4 mm, 16x48x48 views, few sampled pairs, no workers.
_base_ = ['../../../configs/sam/sam_tiny-fpn3d_1xb2-cpu-300it_synthetic-ct.py']

model = dict(
    fine_sampler=dict(num_preselect=400, max_queries=30, num_hard_candidates=200,
                      num_negatives=100),
    coarse_sampler=dict(max_queries=20, num_hard_candidates=20, num_negatives=10,
                        num_global_negatives=20))
train_dataloader = dict(
    batch_size=2, num_workers=0, persistent_workers=False,
    dataset=dict(num_subjects=8, spacing=4.0,
                 pipeline=[
                     dict(type='RandomTwoViewCrop', patch_size=(16, 48, 48), spacing=2.0,
                          scale_range=(0.8, 1.2), box_margin=1.05, overlap_prob=1.0,
                          seed_margin=(2, 5, 5)),
                     dict(type='NormalizeViewIntensity'),
                     dict(type='PackSAMInputs'),
                 ]))
optim_wrapper = dict(optimizer=dict(lr=0.05))
param_scheduler = []
train_cfg = dict(max_iters=4)
default_hooks = dict(logger=dict(interval=1),
                     checkpoint=dict(interval=2, max_keep_ckpts=10))
randomness = dict(seed=0)
