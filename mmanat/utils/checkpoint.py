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


#: largest finite float16 value
FP16_MAX = float(torch.finfo(torch.float16).max)


def state_dict_to_fp16(state: dict) -> tuple:
    """Halve the floating-point tensors of a state dict for a small release file, keeping in
    float32 every tensor that float16 cannot hold: values beyond +-65504 would turn into inf.
    (BatchNorm running variances of a stem that sees raw intensities reach 1e5: in fp16 those
    channels become inf and the network's output changes; a published UAE-M lost its CT->MR
    registration this way, 4.5 -> 22.3 mm.)

    Returns ``(new_state, kept_fp32)``: the converted dict (other entries unchanged) and the
    names of the float tensors left in float32.
    """
    out, kept = {}, []
    for k, v in state.items():
        if torch.is_tensor(v) and v.is_floating_point():
            finite = v[torch.isfinite(v)]
            if finite.numel() and float(finite.abs().max()) > FP16_MAX:
                out[k] = v.float()
                kept.append(k)
            else:
                out[k] = v.half()
        else:
            out[k] = v
    return out, kept
