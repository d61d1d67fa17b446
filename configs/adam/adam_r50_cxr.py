# Adam reference recipe, short name: see adam_r50-mlp_8xb32-3x200e_cxr14.py.
#
#   tools/dist_train.sh configs/adam/adam_r50_cxr.py 8
_base_ = ['./adam_r50-mlp_8xb32-3x200e_cxr14.py']
