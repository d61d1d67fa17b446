"""Loading mmengine checkpoints under torch >= 2.6 (``torch.load(weights_only=True)``).

mmengine 0.10.7 pickles its message hub (``HistoryBuffer``, numpy arrays and dtypes, and the
buffer's statistic methods looked up with ``getattr``) into every checkpoint, so ``--resume``
fails with torch's weights-only unpickler. Instead of turning the safety off
(``weights_only=False``) we allow-list exactly the globals those checkpoints contain; anything
else in a checkpoint is still refused. ``getattr`` is safe here because the weights-only
unpickler only *calls* allow-listed globals, so an attribute it fetches cannot be executed
unless it is itself on the list.
"""
import builtins

import numpy as np
import torch

_DONE = False


def _numpy_globals():
    out = [np.ndarray, np.dtype, np.core.multiarray._reconstruct, np.core.multiarray.scalar]
    dtypes = getattr(np, 'dtypes', None)
    if dtypes is not None:
        out += [getattr(dtypes, n) for n in dir(dtypes) if n.endswith('DType')]
    return out


def allow_mmengine_checkpoint_globals() -> None:
    """Allow-list the globals found in mmengine checkpoints for ``torch.load`` (idempotent)."""
    global _DONE
    if _DONE or not hasattr(torch.serialization, 'add_safe_globals'):
        return
    from mmengine.logging.history_buffer import HistoryBuffer
    torch.serialization.add_safe_globals([HistoryBuffer, builtins.getattr] + _numpy_globals())
    _DONE = True
