# A small 2D SAM that trains on CPU in minutes on synthetic chest radiographs rendered on the
# fly (no input files): sam2d_tiny.py (ResNet-18 of width 16, 32-d embeddings, 2 mm pixels),
# 4 pairs of 128 x 128 views per iteration, the CPU schedule of the 3D tiny recipe.
#
#   python tools/train.py configs/sam/sam2d_tiny-fpn_1xb4-cpu-300it_synthetic-cxr.py
#   tools/dist_train.sh configs/sam/sam2d_tiny-fpn_1xb4-cpu-300it_synthetic-cxr.py 2  # 2 procs
_base_ = [
    '../_base_/models/sam2d_tiny.py',
    '../_base_/datasets/sam2d_synthetic_cxr.py',
    '../_base_/schedules/cpu_sgd_300it.py',
]
train_dataloader = dict(batch_size=4, num_workers=2)
