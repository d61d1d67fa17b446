# UAE-S network (SPEC 2): the SAM reference network (sam_r18_fpn.py) plus a semantic head - a
# second FPN over stages 1-3 with the fine neck's config and its own weights, 128-d at stride
# (2, 2, 2), L2-normalised - trained with SupConMean (tau 0.1). Per iteration p ~ U(0, 1):
# p < semantic_prob (0.4) -> semantic loss on the inter-subject pair(s) only, else the SAM
# intra-volume loss only.
_base_ = ['./sam_r18_fpn.py']
model = dict(
    type='UAES',
    data_preprocessor=dict(type='UAESDataPreprocessor', pad_size_divisor=(4, 16, 16)),
    semantic_head=dict(
        type='FPN3D', in_channels=(64, 128, 256), out_channels=128,
        conv_cfg=dict(type='Conv3d')),
    semantic_levels=(0, 1, 2),
    semantic_stride=(2, 2, 2),
    loss_semantic=dict(type='SupConMeanLoss', temperature=0.1, loss_weight=1.0),
    semantic_prob=0.4,
    branch_seed=None)     # None: drawn from the runner's seed on rank 0, shared by all ranks
# Each iteration trains either the semantic head or the fine + coarse heads (never both), so
# DDP must tolerate parameters without gradients. Ignored without distributed training; on a
# CPU-only machine mmanat.utils.dist keeps these options and drops the device ids.
model_wrapper_cfg = dict(
    type='MMDistributedDataParallel', broadcast_buffers=False, find_unused_parameters=True)
