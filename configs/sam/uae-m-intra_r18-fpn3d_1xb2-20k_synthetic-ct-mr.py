# UAE-M stage 1 (UAE-M0; Bai et al., "UAE: Universal anatomical embedding on multi-modality
# medical images", 2023, arXiv:2311.15111): intra-volume SAM training on CT and MR (CT with
# p = 0.6) with aggressive contrast augmentation (RandHistogramShift) and +-5 degree rotations.
#
#   python tools/train.py configs/sam/uae-m-intra_r18-fpn3d_1xb2-20k_synthetic-ct-mr.py
#
# The fine hard negatives are SAM's (top 2000 -> 500). If the fine loss settles at
# log(num_negatives + 1) (one constant embedding, as with the small CPU models), use random
# negatives: --cfg-options model.fine_sampler.num_hard_candidates=None
# The network is the released UAE-M's (configs/_base_/models/uae_m_r18_fpn.py: the SAM network
# plus an untrained semantic head, matching with fine + coarse).
_base_ = [
    '../_base_/models/uae_m_r18_fpn.py',
    '../_base_/datasets/uae_m_synthetic.py',
    '../_base_/datasets/synthetic_landmark_pairs.py',
    '../_base_/schedules/sam_sgd_20k.py',
    '../_base_/default_runtime.py',
]
