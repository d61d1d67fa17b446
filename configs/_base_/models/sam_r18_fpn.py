# SAM reference network (Yan et al., "SAM: Self-supervised learning of pixel-wise anatomical
# embeddings in radiological images", IEEE TMI 2022, arXiv:2012.02383): 3D ResNet-18 (1 input
# channel, (z, y, x) strides (2,2,2), (2,4,4), (2,8,8), (4,16,16)), FPN over stages 1-3 ->
# 128-d fine embeddings at stride (2,2,2), coarse head on stage 4 -> 128-d at stride
# (4,16,16), pixel-pair InfoNCE with temperature 0.5, coarse-to-fine hard-negative sampling.
#
# The fine neck is mmanat's FPN3D (equal to `type='mmdet.FPN'` with conv_cfg=Conv3d and
# taking its first output, but without the unused coarser output convs; see
# mmanat/models/necks/fpn3d.py).
model = dict(
    type='SAM',
    data_preprocessor=dict(type='SAMDataPreprocessor', pad_size_divisor=(4, 16, 16)),
    backbone=dict(
        type='ResNet3D',
        depth=18,
        in_channels=1,
        base_channels=64,
        out_indices=(0, 1, 2, 3),
        conv_cfg=dict(type='Conv3d'),
        norm_cfg=dict(type='BN3d', requires_grad=True)),
    neck=dict(
        type='FPN3D',
        in_channels=(64, 128, 256),
        out_channels=128,
        conv_cfg=dict(type='Conv3d')),
    coarse_head=dict(
        type='CoarseEmbeddingHead', in_channels=512, channels=128, kernel_sizes=(1, 3)),
    fine_levels=(0, 1, 2),
    coarse_level=3,
    fine_stride=(2, 2, 2),
    coarse_stride=(4, 16, 16),
    fine_sampler=dict(
        type='SAMFinePairSampler',
        num_preselect=2000,
        max_queries=100,
        positive_distance=2.0,
        ignore_distance=20.0,
        num_hard_candidates=2000,
        num_negatives=500,
        use_coarse=True,
        no_overlap_fallback=True),
    coarse_sampler=dict(
        type='SAMCoarsePairSampler',
        max_queries=100,
        positive_distance=25.0,
        ignore_distance=5.0,
        num_hard_candidates=250,
        num_negatives=200,
        num_global_negatives=1000),
    loss_fine=dict(type='InfoNCELoss', temperature=0.5, loss_weight=1.0),
    loss_coarse=dict(type='InfoNCELoss', temperature=0.5, loss_weight=1.0))
