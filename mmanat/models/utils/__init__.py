"""Model utilities that are not registered components."""
from .bn_repair import find_nonfinite_bn_stats, repair_bn_state_dict, reset_nonfinite_bn_stats

__all__ = ['find_nonfinite_bn_stats', 'repair_bn_state_dict', 'reset_nonfinite_bn_stats']
