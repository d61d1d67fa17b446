# A small SAM for CPU runs: the reference network (3D ResNet-18, SPEC 1.1 strides) at a
# quarter of the width (16/32/64/128 channels), 32-d embeddings and fewer sampled pairs.
# One training step at 2 pairs of (32, 96, 96) views: about 1.2 s on 2 CPU cores.
model = dict(
    type='SAM',
    data_preprocessor=dict(type='SAMDataPreprocessor', pad_size_divisor=(4, 16, 16)),
    backbone=dict(
        type='ResNet3D',
        depth=18,
        in_channels=1,
        base_channels=16,
        out_indices=(0, 1, 2, 3),
        conv_cfg=dict(type='Conv3d'),
        norm_cfg=dict(type='BN3d', requires_grad=True)),
    neck=dict(
        type='FPN3D',
        in_channels=(16, 32, 64),
        out_channels=32,
        conv_cfg=dict(type='Conv3d')),
    coarse_head=dict(
        type='CoarseEmbeddingHead', in_channels=128, channels=32, kernel_sizes=(1, 3)),
    fine_levels=(0, 1, 2),
    coarse_level=3,
    fine_stride=(2, 2, 2),
    coarse_stride=(4, 16, 16),
    fine_sampler=dict(
        type='SAMFinePairSampler',
        num_preselect=1000,
        max_queries=50,
        positive_distance=2.0,
        ignore_distance=20.0,
        num_hard_candidates=500,
        num_negatives=200,
        use_coarse=True,
        no_overlap_fallback=True),
    coarse_sampler=dict(
        type='SAMCoarsePairSampler',
        max_queries=50,
        positive_distance=25.0,
        ignore_distance=5.0,
        num_hard_candidates=100,
        num_negatives=50,
        num_global_negatives=200),
    loss_fine=dict(type='InfoNCELoss', temperature=0.5, loss_weight=1.0),
    loss_coarse=dict(type='InfoNCELoss', temperature=0.5, loss_weight=1.0))
