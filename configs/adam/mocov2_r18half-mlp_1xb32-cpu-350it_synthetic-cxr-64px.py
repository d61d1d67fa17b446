# The "MoCo v2 without Anatomy Decomposer and Purposive Pruner" baseline of
# tools/analysis/compare_adam.py: the Adam CPU config
# (adam_r18half-mlp_1xb32-cpu-350it_synthetic-cxr-64px.py) with every stage at granularity
# n = 0 (whole image) and the pruner off. Same iterations, optimiser resets and
# queue as Adam, so the comparison isolates AD + PP.
#   python tools/train.py configs/adam/mocov2_r18half-mlp_1xb32-cpu-350it_synthetic-cxr-64px.py
_base_ = ['./adam_r18half-mlp_1xb32-cpu-350it_synthetic-cxr-64px.py']

stages = [dict(granularity=0, iters=150, prune=False), dict(granularity=0, iters=100, prune=False),
          dict(granularity=0, iters=100, prune=False)]
custom_hooks = [dict(type='AnatomyStageHook', stages=stages)]
