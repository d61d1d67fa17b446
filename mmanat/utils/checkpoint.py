"""Reading checkpoints: the one place that loads a ``.pth`` file and fits it to a model.

* :func:`load_checkpoint_file` reads a checkpoint safely (``torch.load(weights_only=True)``)
  after checking a shipped one against its model zoo hash (:mod:`mmanat.utils.model_zoo`);
* :func:`state_dict_of` takes the weights out of it (mmengine, plain or DDP-saved);
* :func:`fit_state_dict` loads them into a model, naming every key that does not fit;
* :func:`state_dict_to_fp16` halves a state dict for publishing, keeping in float32 what
  float16 cannot hold.

Loading mmengine checkpoints under torch >= 2.6 (``torch.load(weights_only=True)``):
mmengine 0.10.7 pickles its message hub (``HistoryBuffer``, numpy arrays and dtypes, and the
buffer's statistic methods looked up with ``getattr``) into every checkpoint, so ``--resume``
fails with torch's weights-only unpickler. Instead of turning the safety off
(``weights_only=False``) we allow-list exactly the globals those checkpoints contain; anything
else in a checkpoint is still refused. ``getattr`` is safe here because the weights-only
unpickler only *calls* allow-listed globals, so an attribute it fetches cannot be executed
unless it is itself on the list.
"""
import builtins
import os
import os.path as osp
from typing import Dict

import numpy as np
import torch

from .exceptions import InvalidInputError

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


def load_checkpoint_file(checkpoint: str) -> dict:
    """Read a checkpoint file into a dict, refusing anything but weights and mmengine state.

    A checkpoint listed in the ``model_zoo.json`` of its folder (a shipped one) is checked
    against its SHA-256 first (:func:`mmanat.utils.model_zoo.verify_checkpoint`).

    Args:
        checkpoint: path of a ``.pth`` file (an mmengine checkpoint or a plain state dict).

    Returns:
        The loaded dict, on the CPU.

    Raises:
        InvalidInputError: the file is missing, corrupted (hash mismatch), not a torch
            checkpoint, holds objects outside the allow-list, or is not a dict.
    """
    from .model_zoo import verify_checkpoint
    path = os.fspath(checkpoint)
    if not osp.isfile(path):
        raise InvalidInputError(
            f'{path}: checkpoint not found (working directory {os.getcwd()}); pass the .pth '
            'file written by tools/train.py (work_dirs/<config>/iter_*.pth).')
    verify_checkpoint(path)
    allow_mmengine_checkpoint_globals()
    try:
        ckpt = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unpickling failure is a bad input file
        raise InvalidInputError(
            f'{path}: cannot load the checkpoint ({type(err).__name__}: '
            f'{str(err).strip().splitlines()[0][:200] if str(err).strip() else ""}); it is '
            'truncated, not a torch checkpoint, or holds objects outside the allow-list.'
        ) from None
    if not isinstance(ckpt, dict):
        raise InvalidInputError(f'{path}: not a checkpoint (a {type(ckpt).__name__}, expected '
                                'a dict with a state_dict).')
    return ckpt


def state_dict_of(ckpt: dict, path: str) -> Dict[str, torch.Tensor]:
    """The weights of a loaded checkpoint.

    Args:
        ckpt: the dict from :func:`load_checkpoint_file`: an mmengine checkpoint
            (``state_dict``), a ``model`` / ``model_state_dict`` wrapper, or a plain state dict.
        path: the file it came from (for error messages).

    Returns:
        Name -> tensor (non-tensor entries dropped); the ``module.`` prefix of a checkpoint
        saved from a DDP-wrapped model is removed.

    Raises:
        InvalidInputError: the checkpoint holds no tensors.
    """
    for key in ('state_dict', 'model', 'model_state_dict'):
        if isinstance(ckpt.get(key), dict):
            state = ckpt[key]
            break
    else:
        state = ckpt
    state = {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}
    if not state:
        raise InvalidInputError(f'{path}: the checkpoint holds no weights (no state_dict).')
    if all(k.startswith('module.') for k in state):  # saved from a DDP-wrapped model
        state = {k[len('module.'):]: v for k, v in state.items()}
    return state


def fit_state_dict(model: torch.nn.Module, state: Dict[str, torch.Tensor], path: str,
                   config_name: str) -> None:
    """Load ``state`` into ``model`` strictly, or explain why it does not fit.

    Args:
        model: the module built from the config.
        state: weights from :func:`state_dict_of`.
        path: the checkpoint file (for error messages).
        config_name: the config's name (for error messages).

    Raises:
        InvalidInputError: missing, unexpected or differently shaped keys (each kind counted
            and the first few named).
    """
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    mismatched = sorted(k for k in set(own) & set(state)
                        if tuple(own[k].shape) != tuple(state[k].shape))
    if missing or unexpected or mismatched:

        def listing(keys, n=8):
            more = f' ... (+{len(keys) - n} more)' if len(keys) > n else ''
            return ', '.join(keys[:n]) + more

        parts = []
        if missing:
            parts.append(f'{len(missing)} missing key(s): {listing(missing)}')
        if unexpected:
            parts.append(f'{len(unexpected)} unexpected key(s): {listing(unexpected)}')
        if mismatched:
            shapes = [f'{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}'
                      for k in mismatched]
            parts.append(f'{len(mismatched)} shape mismatch(es) (checkpoint vs config): '
                         f'{listing(shapes, 4)}')
        raise InvalidInputError(
            f'{path}: the checkpoint does not fit the config {config_name!r}: '
            + '; '.join(parts) + '. Pass the config the checkpoint was trained with.')
    model.load_state_dict(state, strict=True)


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
