# UAE-M stage 1 (UAE-M0, SPEC 3): intra-volume SAM training on CT and MR (CT with p = 0.6)
# with aggressive contrast augmentation (RandHistogramShift) and +-5 degree rotations.
#   python tools/train.py configs/sam/uae_m_intra.py
# The fine hard negatives are SPEC's (top 2000 -> 500). If the fine loss settles at
# log(num_negatives + 1) (one constant embedding, as with the small CPU models), use random
# negatives: --cfg-options model.fine_sampler.num_hard_candidates=None
_base_ = [
    '../_base_/models/sam_r18_fpn.py',
    '../_base_/datasets/uae_m_synthetic.py',
    '../_base_/schedules/sam_sgd_20k.py',
    '../_base_/default_runtime.py',
]
