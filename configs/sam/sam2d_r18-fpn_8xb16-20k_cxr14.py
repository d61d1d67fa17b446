# 2D SAM reference scale for chest radiographs (Yan et al., SAM, IEEE TMI 2022,
# arXiv:2012.02383, whose X-ray experiments use a 2D network; not released, so this is mmanat's
# 2D recipe): mmdet ResNet-18 + FPN (2D, on one-slice volumes), 128-d fine embeddings at stride
# 4 and coarse ones at stride 32, pixel-pair InfoNCE (T = 0.5), SGD 0.02 with 500 warm-up
# iterations, 20000 iterations, 16 pairs per GPU on 8 GPUs; views of 256 x 256 pixels at
# 1 mm x U(0.8, 1.2) from ChestX-ray14 (configs/_base_/datasets/sam2d_cxr14.py).
#
#   tools/dist_train.sh configs/sam/sam2d_r18-fpn_8xb16-20k_cxr14.py 8 --amp
#   tools/dist_train.sh configs/sam/sam2d_r18-fpn_8xb16-20k_cxr14.py 8 --amp \
#       --cfg-options train_dataloader.dataset.data_root=data/my_cxrs \
#       train_dataloader.dataset.ann_file=list.txt
_base_ = [
    '../_base_/models/sam2d_r18_fpn.py',
    '../_base_/datasets/sam2d_cxr14.py',
    '../_base_/schedules/sam_sgd_20k.py',
    '../_base_/default_runtime.py',
]
train_dataloader = dict(batch_size=16, num_workers=8)
