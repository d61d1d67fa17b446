"""File I/O: medical images and volumes with their geometry, point files, atomic writes,
and the one list of image/volume file extensions (:mod:`.formats`)."""
from .atomic import atomic_path
from .formats import (KNOWN_EXTENSIONS, SUPPORTED_EXTENSIONS, VOLUME_EXTENSIONS, filename_stem,
                      is_volume_file, split_extension, strip_extension)
from .image_io import check_min_size, read_image, read_volume, read_xray, write_image
from .modality import guess_modality
from .points_io import POINT_EXTENSIONS, read_points, write_points

__all__ = [
    'atomic_path', 'read_image', 'read_volume', 'read_xray', 'write_image', 'guess_modality',
    'check_min_size', 'SUPPORTED_EXTENSIONS', 'read_points', 'write_points',
    'POINT_EXTENSIONS', 'VOLUME_EXTENSIONS', 'KNOWN_EXTENSIONS', 'split_extension',
    'strip_extension', 'filename_stem', 'is_volume_file'
]
