# SAM reference recipe (Yan et al., SAM, IEEE TMI 2022, arXiv:2012.02383): 3D ResNet-18 + FPN
# fine head + coarse head, 128-d embeddings, pixel-pair InfoNCE (T = 0.5), SGD 0.02 with 500
# warm-up iterations, 20000 iterations, 6 pairs per GPU on 8 GPUs, AMP on GPU (add --amp),
# views resampled to 2 mm from your own CTs (configs/_base_/datasets/sam_ct_folder.py).
#
#   tools/dist_train.sh configs/sam/sam_r18-fpn3d_8xb6-20k_ct-2mm.py 8 --amp \
#       --cfg-options train_dataloader.dataset.data_root=data/my_ct_cache
_base_ = [
    '../_base_/models/sam_r18_fpn.py',
    '../_base_/datasets/sam_ct_folder.py',
    '../_base_/datasets/synthetic_landmark_pairs.py',
    '../_base_/schedules/sam_sgd_20k.py',
    '../_base_/default_runtime.py',
]
train_dataloader = dict(batch_size=6, num_workers=4)
