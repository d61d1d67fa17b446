# UAE-S reference recipe (configs/sam/uae_s.py) on your own CTs with organ label maps. The
# expected files and the command line are in configs/_base_/datasets/uae_s_ct_folder.py.
_base_ = [
    '../_base_/models/uae_s_r18_fpn.py',
    '../_base_/datasets/uae_s_ct_folder.py',
    '../_base_/datasets/synthetic_landmark_pairs.py',
    '../_base_/schedules/sam_sgd_20k.py',
    '../_base_/default_runtime.py',
]
