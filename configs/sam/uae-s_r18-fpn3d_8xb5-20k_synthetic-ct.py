# UAE-S reference recipe (Bai et al., "UAE: Universal anatomical embedding on multi-modality
# medical images", 2023, arXiv:2311.15111): the SAM network (3D ResNet-18, fine FPN + coarse
# head, 128-d) plus a semantic head (a second FPN, own weights, 128-d at stride 2) trained
# with SupConMean (tau 0.1) on inter-subject pairs with organ label maps. Each iteration draws
# p ~ U(0, 1): p < 0.4 -> semantic loss only, else the SAM intra-volume loss only.
# Batch 4 intra pairs + 1 inter pair per GPU on 8 GPUs; SGD 0.02 with 500 warm-up iterations
# (as SAM), 20000 iterations, checkpoint every 1000.
# Data: synthetic subjects generated on the fly; for your own labelled CTs use
# configs/sam/uae-s_r18-fpn3d_8xb5-20k_ct-2mm.py. Short name: configs/sam/uae_s.py.
#
#   tools/dist_train.sh configs/sam/uae_s.py 8 --amp        # 8 GPUs (DDP, NCCL)
#   python tools/train.py configs/sam/uae_s.py              # 1 GPU
_base_ = [
    '../_base_/models/uae_s_r18_fpn.py',
    '../_base_/datasets/uae_s_synthetic.py',
    '../_base_/datasets/synthetic_landmark_pairs.py',
    '../_base_/schedules/sam_sgd_20k.py',
    '../_base_/default_runtime.py',
]
