# The "MoCo v2 without Anatomy Decomposer and Purposive Pruner" baseline of
# tools/analysis/compare_adam.py: configs/adam/adam_r18_synthetic_cpu.py with every stage at
# granularity n = 0 (whole image) and the pruner off. Same iterations, optimiser resets and
# queue as Adam, so the comparison isolates AD + PP.
#   python tools/train.py configs/adam/moco_r18_synthetic_cpu.py
_base_ = ['./adam_r18_synthetic_cpu.py']

stages = [dict(granularity=0, iters=150, prune=False), dict(granularity=0, iters=100, prune=False),
          dict(granularity=0, iters=100, prune=False)]
custom_hooks = [dict(type='AnatomyStageHook', stages=stages)]
