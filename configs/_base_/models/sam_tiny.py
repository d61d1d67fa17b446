# A small SAM for CPU runs and tests: the reference layout (strides of
# sam_r18_fpn.py) with a ResNet-18 of width 16 (16/32/64/128 channels), 32-d embeddings and
# fewer sampled pairs.
_base_ = ['./sam_r18_fpn.py']

model = dict(
    backbone=dict(base_channels=16),
    neck=dict(in_channels=(16, 32, 64), out_channels=32),
    coarse_head=dict(in_channels=128, channels=32),
    fine_sampler=dict(num_preselect=1000, max_queries=50, num_hard_candidates=500,
                      num_negatives=200),
    coarse_sampler=dict(max_queries=50, num_hard_candidates=100, num_negatives=50,
                        num_global_negatives=200))
