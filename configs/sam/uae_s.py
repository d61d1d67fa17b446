# UAE-S reference recipe, short name: see uae-s_r18-fpn3d_8xb5-20k_synthetic-ct.py.
#
#   tools/dist_train.sh configs/sam/uae_s.py 8 --amp
_base_ = ['./uae-s_r18-fpn3d_8xb5-20k_synthetic-ct.py']
