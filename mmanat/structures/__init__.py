"""Geometry-carrying containers: images/volumes in world millimetres, point sets."""
from .image import MODALITIES, MedicalImage
from .points import SPACES, PointSet, check_space, convert_space

__all__ = ['MedicalImage', 'MODALITIES', 'PointSet', 'SPACES', 'convert_space', 'check_space']
