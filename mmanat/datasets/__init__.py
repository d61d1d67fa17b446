from . import transforms  # noqa
from . import volume_list_dataset  # noqa: F401
from . import synthetic_dataset  # noqa: F401
from . import radiograph_dataset  # noqa: F401
from . import synthetic_radiograph_dataset  # noqa: F401
from . import cross_subject_pair_dataset  # noqa: F401
from . import pair_collate  # noqa: F401
from . import samplers  # noqa: F401
from . import paired_volume_dataset  # noqa: F401
from . import synthetic_landmark_pair_dataset  # noqa: F401
from . import landmark_pair_dataset  # noqa: F401
from . import lesion_pair_dataset  # noqa: F401
