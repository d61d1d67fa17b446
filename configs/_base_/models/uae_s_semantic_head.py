# The UAE-S additions to a SAM network (Bai et al., "UAE: Universal anatomical embedding on
# multi-modality medical images", 2023, arXiv:2311.15111), kept as the variable `uae_s` so that
# uae_s_r18_fpn.py and uae_s_tiny.py apply them to their own SAM model:
#   model = dict(_base_.uae_s, semantic_head=_base_.model.neck)
# The semantic head is a second FPN over stages 1-3 with the fine neck's config and its own
# weights, L2-normalised embeddings at stride (2, 2, 2), trained with SupConMean (tau 0.1).
# Per iteration p ~ U(0, 1): p < semantic_prob (0.4) -> semantic loss on the inter-subject
# pair(s) only, else the SAM intra-volume loss only.
uae_s = dict(
    type='UAES',
    data_preprocessor=dict(type='UAESDataPreprocessor', pad_size_divisor=(4, 16, 16)),
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
