"""Geometry-carrying containers: images/volumes in world millimetres, point sets."""
from .geometry import bbox_of_mask, check_points_inside, crop_image
from .image import MODALITIES, MedicalImage
from .points import SPACES, PointSet, check_space, convert_space
from .resample import reorient, resample_to_reference, resample_to_spacing
from .embedding_map import EmbeddingMaps, GridGeometry  # noqa: F401
from .body import body_bbox, body_mask  # noqa: F401

__all__ = [
    'MedicalImage', 'MODALITIES', 'PointSet', 'SPACES', 'convert_space', 'check_space',
    'reorient', 'resample_to_spacing', 'resample_to_reference', 'check_points_inside',
    'crop_image', 'bbox_of_mask'
]
__all__ += ['body_mask', 'body_bbox']
from .planar import as_2d_image, as_planar_volume, drop_points, is_planar, lift_points  # noqa: F401,E501

__all__ += ['as_planar_volume', 'as_2d_image', 'is_planar', 'lift_points', 'drop_points']
