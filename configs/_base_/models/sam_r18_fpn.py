# SAM reference network (Yan et al., "SAM: Self-supervised learning of pixel-wise anatomical
# embeddings in radiological images", IEEE TMI 2022, arXiv:2012.02383): 3D ResNet-18 (1 input
# channel, (z, y, x) strides (2,2,2), (2,4,4), (2,8,8), (4,16,16)), FPN over stages 1-3 ->
# 128-d fine embeddings at stride (2,2,2), coarse head on stage 4 -> 128-d at stride
# (4,16,16), pixel-pair InfoNCE with temperature 0.5, coarse-to-fine hard-negative sampling.
#
# This is exactly the network of the released SAM.pth (and the backbone / fine / coarse heads of
# the released UAE-S and UAE-M files; reference code sam/models/backbones/resnet3d.py,
# sam/models/necks/fpn3d.py): stride-1 (3,7,7) stem + BN + ReLU, no stem max-pool; stage 1
# stride (1,2,2) with a 1x1x1 projection shortcut; a (2,1,1) z max-pool in floor mode after
# stage 1; stages 2-4 strides (1,2,2), (1,2,2), (2,2,2); (1,3,3) kernels in stages 1-2, (3,3,3)
# in 3-4; BatchNorm eps 1e-5; FPN with 1x1x1 laterals, legacy 'nearest' top-down upsampling to
# the lateral's exact size and one 3x3x3 output conv on the finest level; the coarse head is
# the read-out FPN on stage 4 (1x1x1 then 3x3x3 conv, bias, no norm); L2 normalisation over
# channels (eps 1e-12). tools/model_converters/sam_to_mmanat.py maps the released key names
# onto it (docs/en/model_zoo.md, "Published models").
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
        stem_stride=(1, 1, 1),
        strides=((1, 2, 2), (1, 2, 2), (1, 2, 2), (2, 2, 2)),
        z_pool_after_stage1=True,
        z_pool_ceil_mode=False,
        inflate=(False, False, True, True),
        out_indices=(0, 1, 2, 3),
        # the released config (reference configs/sam/sam_deeplesion.py) sets False; it then
        # inflated ImageNet ResNet-18 weights, which mmanat does not (no model hub): Kaiming
        # init without zeroed residual branches
        zero_init_residual=False,
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
    # inference on the image as it is, like the released code (no padding to the stride)
    pad_at_inference=False,
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
    # the released coarse sampling (reference sam/models/frameworks/sam.py, Sam.coarse_loss):
    # every coarse voxel with a voxel of the other view within 25 mm is a query (no cap); a
    # query is dropped when its positive is >= 8 mm (view 0 -> 1) / >= 6 mm (1 -> 0) away in
    # z; one draw of global negatives per view shared by its queries; without any query, every
    # voxel is its own positive against the top negatives of both views. Kept deviation: the
    # top-250 -> 200 hard negatives are drawn from the top-k indices (the UAE reference
    # framework used random positions there, a bug).
    coarse_sampler=dict(
        type='SAMCoarsePairSampler',
        max_queries=None,
        positive_distance=25.0,
        ignore_distance=5.0,
        num_hard_candidates=250,
        num_negatives=200,
        num_global_negatives=1000,
        z_distance=(8.0, 6.0),
        global_sampling='shared',
        no_overlap_fallback=True,
        fallback_negatives='both_views'),
    loss_fine=dict(type='InfoNCELoss', temperature=0.5, loss_weight=1.0),
    loss_coarse=dict(type='InfoNCELoss', temperature=0.5, loss_weight=1.0))
