"""Small helpers without a better home: plain-Python conversion of nested values."""
from __future__ import annotations

import math
from typing import Any

__all__ = ['to_plain']


def to_plain(value: Any, nan_to_none: bool = False) -> Any:
    """A copy of ``value`` made of plain Python types only (for JSON, or for
    ``torch.load(weights_only=True)``).

    Dicts become dicts with ``str`` keys, lists and tuples become lists, numpy / torch scalars
    and arrays (anything with a ``tolist`` method) become Python numbers and nested lists;
    ``None``, ``bool``, ``int``, ``float`` and ``str`` are kept; any other object becomes its
    ``str``.

    Args:
        value: the value to convert (any nesting of the above).
        nan_to_none: replace non-finite floats (NaN, +-inf) by ``None`` (strict JSON has no
            NaN); otherwise they are kept as floats.

    Returns:
        The converted copy.
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, float):  # also numpy.float64, a float subclass
        return None if nan_to_none and not math.isfinite(value) else float(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, dict):
        return {str(k): to_plain(v, nan_to_none) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v, nan_to_none) for v in value]
    if hasattr(value, 'tolist'):  # numpy / torch scalars and arrays
        return to_plain(value.tolist(), nan_to_none)
    return str(value)
