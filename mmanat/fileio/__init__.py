"""File I/O: medical images and volumes with their geometry, point files, atomic writes."""
from .atomic import atomic_path
from .image_io import (SUPPORTED_EXTENSIONS, check_min_size, guess_modality, read_image,
                       read_volume, read_xray, write_image)
from .points_io import POINT_EXTENSIONS, read_points, write_points

__all__ = [
    'atomic_path', 'read_image', 'read_volume', 'read_xray', 'write_image', 'guess_modality',
    'check_min_size', 'SUPPORTED_EXTENSIONS', 'read_points', 'write_points',
    'POINT_EXTENSIONS'
]
