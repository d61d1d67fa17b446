from .fpn3d import FPN3D

__all__ = ['FPN3D']
