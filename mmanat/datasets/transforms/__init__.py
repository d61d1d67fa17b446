"""Data transforms (mmcv ``BaseTransform`` subclasses registered in ``TRANSFORMS``)."""
from . import body_mask  # noqa: F401
from . import crop_to_body  # noqa: F401
from . import intensity  # noqa: F401
from . import loading  # noqa: F401
from . import resample_volume  # noqa: F401
from . import two_view_crop  # noqa: F401
from . import view_intensity  # noqa: F401
from . import intensity_augment  # noqa: F401
from . import pack_sam_inputs  # noqa: F401
from . import anatomy_decomposer  # noqa: F401
from . import two_view_xray_augment  # noqa: F401
from . import pack_two_view_inputs  # noqa: F401
from . import rand_histogram_shift  # noqa: F401
from . import inter_modality_crop  # noqa: F401
from . import torchio_view_intensity  # noqa: F401
from . import random_view_deformation  # noqa: F401
