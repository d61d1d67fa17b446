"""Model utilities: BatchNorm repair helpers and the :class:`Planar` 2D-module wrapper."""
from .bn_repair import find_nonfinite_bn_stats, repair_bn_state_dict, reset_nonfinite_bn_stats
from .planar import Planar

__all__ = ['find_nonfinite_bn_stats', 'repair_bn_state_dict', 'reset_nonfinite_bn_stats',
           'Planar']
from .ema_teacher import copy_student_to_teacher, cosine_momentum, ema_update  # noqa: F401,E402
