from .fpn3d import FPN3D

__all__ = ['FPN3D']
from .moco_mlp_neck import MoCoMLPNeck  # noqa: F401,E402
