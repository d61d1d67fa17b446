# UAE-M network (Bai et al., "UAE: Universal anatomical embedding on multi-modality medical
# images", 2023, arXiv:2311.15111, Sec. III-C): the published SAM network (sam_r18_fpn.py) plus
# the semantic head that the released CrossSAM_iter_20000_ct_mr_inter_1.pth carries (reference
# framework Sam_uniform_cross_volume_dual_head_mri_ct builds it from the neck config). UAE-M
# matches CT with MR through the fine and coarse maps only (reference tools/demo_ct_mr.py), so
# `test_heads` leaves the semantic map out of inference, and `semantic_prob=0` never trains it
# (mmanat's UAE-M recipe has no organ labels): the head is kept so that a released file loads
# with every tensor used.
_base_ = ['./uae_s_r18_fpn.py']
model = dict(semantic_prob=0.0, test_heads=('fine', 'coarse'))
