# 2D SAM for radiographs (Yan et al., "SAM: Self-supervised learning of pixel-wise anatomical
# embeddings in radiological images", IEEE TMI 2022, arXiv:2012.02383: the paper's chest X-ray
# experiments use a 2D network; its weights and code were not released, so this is mmanat's
# 2D counterpart of sam_r18_fpn.py, not a reproduction of a released file).
#
# A radiograph (H, W) is a one-slice volume (1, H, W) in the world plane z = 0
# (mmanat.structures.planar), so SAM, its data preprocessor, pair samplers and losses run
# unchanged with D = 1; the 2D convolutions are mmdet's ResNet and FPN, wrapped by Planar
# (mmanat/models/utils/planar.py) to take and return (N, C, 1, H, W) tensors.
#
# Network: mmdet ResNet-18 (1 input channel; stem 7x7 stride 2 + max-pool, stage strides
# 4, 8, 16, 32), mmdet FPN over stages 1-3 -> 128-d fine embeddings at stride (1, 4, 4) (its
# first output; the two coarser FPN outputs are unused, hence find_unused_parameters below),
# coarse head (1x1 then 3x3 conv) on stage 4 -> 128-d coarse embeddings at stride (1, 32, 32),
# both L2-normalised; pixel-pair InfoNCE with temperature 0.5 at both levels.
# Inference input: radiographs resampled to input_spacing = 1.0 mm pixels (mmanat.apis.embed),
# intensities normalize_intensity(arr, 'XR') (0.2 / 99.8 percentiles -> [0, 255] - 50), as in
# training (NormalizeViewIntensity).
model = dict(
    type='SAM',
    data_preprocessor=dict(type='SAMDataPreprocessor', pad_size_divisor=(1, 32, 32)),
    backbone=dict(
        type='Planar',
        module=dict(
            type='mmdet.ResNet',
            depth=18,
            in_channels=1,
            base_channels=64,
            num_stages=4,
            strides=(1, 2, 2, 2),
            out_indices=(0, 1, 2, 3),
            style='pytorch',
            norm_cfg=dict(type='BN', requires_grad=True),
            norm_eval=False,  # trained from scratch: BatchNorm statistics are learned
            zero_init_residual=True)),
    neck=dict(
        type='Planar',
        module=dict(type='mmdet.FPN', in_channels=[64, 128, 256], out_channels=128,
                    num_outs=3)),
    coarse_head=dict(
        type='CoarseEmbeddingHead', in_channels=512, channels=128,
        kernel_sizes=((1, 1, 1), (1, 3, 3))),
    fine_levels=(0, 1, 2),
    coarse_level=3,
    fine_stride=(1, 4, 4),
    coarse_stride=(1, 32, 32),
    pad_at_inference=True,
    input_spacing=1.0,
    # distances in mm as the 3D recipe: the fine grid is 4 mm * s (3D: 2 mm * 2 * s), the
    # coarse one 32 mm * s in-plane (3D: 2 mm * 16 * s)
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
    # a 256 x 256 view has 8 x 8 coarse voxels (128 per pair): fewer in-pair negatives than the
    # 3D recipe; no z filter (every coarse voxel of a radiograph has z = 0)
    coarse_sampler=dict(
        type='SAMCoarsePairSampler',
        max_queries=None,
        positive_distance=25.0,
        ignore_distance=5.0,
        num_hard_candidates=100,
        num_negatives=50,
        num_global_negatives=1000,
        z_distance=None,
        global_sampling='shared',
        no_overlap_fallback=True,
        fallback_negatives='both_views'),
    loss_fine=dict(type='InfoNCELoss', temperature=0.5, loss_weight=1.0),
    loss_coarse=dict(type='InfoNCELoss', temperature=0.5, loss_weight=1.0))
# the FPN's coarser outputs (strides 8, 16) are computed but unused: DDP must allow it
model_wrapper_cfg = dict(type='MMDistributedDataParallel', find_unused_parameters=True)
