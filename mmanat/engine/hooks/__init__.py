
from .anatomy_stage_hook import AnatomyStageHook  # noqa: F401,E402
