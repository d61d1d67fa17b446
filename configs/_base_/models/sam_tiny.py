# A small SAM for CPU runs and tests: the cumulative strides of sam_r18_fpn.py with a
# ResNet-18 of width 16 (16/32/64/128 channels), 32-d embeddings and fewer sampled pairs.
# How it differs from the published network (sam_r18_fpn.py), besides the width: the compact
# backbone layout of mmanat.models.backbones.resnet3d - the in-plane stride sits in the stem
# (stride (1,2,2)) instead of stage 1 (which then has no projection shortcut), so the stem
# output is 4x smaller, and the z max-pool rounds up (an odd last slice is kept); zero-initialised
# residual branches; mmanat's coarse pair sampling (below). Every shipped 3D checkpoint
# (checkpoints/{sam,uae_s,uae_m}_default.pth) has this layout.
_base_ = ['./sam_r18_fpn.py']

model = dict(
    backbone=dict(
        base_channels=16,
        stem_stride=(1, 2, 2),
        strides=((1, 1, 1), (1, 2, 2), (1, 2, 2), (2, 2, 2)),
        z_pool_ceil_mode=True,
        zero_init_residual=True),
    # mmanat's inference: the image padded with air to a multiple of the coarse stride
    pad_at_inference=True,
    neck=dict(in_channels=(16, 32, 64), out_channels=32),
    coarse_head=dict(in_channels=128, channels=32),
    fine_sampler=dict(num_preselect=1000, max_queries=50, num_hard_candidates=500,
                      num_negatives=200),
    # mmanat's coarse sampling (capped random queries, no z filter, per-query global negatives)
    # rather than the released one of sam_r18_fpn.py: cheaper, and what the shipped models used
    coarse_sampler=dict(max_queries=50, num_hard_candidates=100, num_negatives=50,
                        num_global_negatives=200, z_distance=None, global_sampling='per_query',
                        no_overlap_fallback=False, fallback_negatives='same_view'))
