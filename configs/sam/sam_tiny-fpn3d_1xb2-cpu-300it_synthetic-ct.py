# A small SAM that trains on CPU in minutes on synthetic subjects generated on the fly
# (no data on disk). Same components as the reference, reduced width and negatives.
#
#   python tools/train.py configs/sam/sam_tiny-fpn3d_1xb2-cpu-300it_synthetic-ct.py
#   tools/dist_train.sh configs/sam/sam_tiny-fpn3d_1xb2-cpu-300it_synthetic-ct.py 2  # 2 CPU processes
_base_ = [
    '../_base_/models/sam_tiny.py',
    '../_base_/datasets/sam_synthetic.py',
    '../_base_/datasets/synthetic_landmark_pairs.py',
    '../_base_/schedules/cpu_sgd_300it.py',
]
train_dataloader = dict(batch_size=2, num_workers=2)
