"""Exception types raised by mmanat."""


class MMAnatError(Exception):
    """Base class of every error mmanat raises on purpose."""


class InvalidInputError(MMAnatError, ValueError):
    """Bad user input: a missing or unreadable file, an unsupported format, a bad value.

    The message always names the offending file or value and says what to do about it.
    """


class MissingDependencyError(MMAnatError, ImportError):
    """An optional dependency is not installed (e.g. ANTsPy for the ANTs baselines).

    The message names the package and the command that installs it.
    """
