
from . import hooks  # noqa: F401,E402
