"""Geometry-carrying containers: images/volumes in world millimetres, point sets."""
from .image import MODALITIES, MedicalImage

__all__ = ['MedicalImage', 'MODALITIES']
