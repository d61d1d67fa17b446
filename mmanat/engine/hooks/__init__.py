
from .anatomy_stage_hook import AnatomyStageHook  # noqa: F401,E402
from .anatomy_stage_hook_v2 import AnatomyStageHookV2  # noqa: F401,E402
