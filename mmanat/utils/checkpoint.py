"""Reading checkpoints: the one place that loads a ``.pth`` file and fits it to a model.

* :func:`load_checkpoint_file` reads a checkpoint safely (``torch.load(weights_only=True)``)
  after checking a shipped one against its model zoo hash (:mod:`mmanat.utils.model_zoo`);
* :func:`state_dict_of` takes the weights out of it (mmengine, plain or DDP-saved);
* :func:`fit_state_dict` loads them into a model, naming every key that does not fit;
* :func:`checkpoint_network` / :func:`check_network_fits`: what network a checkpoint holds
  (its stored config's ``model.type``, the dimension of its convolutions) and the one check,
  made before any model is built, that it is the network a task or a config needs;
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
from typing import Dict, Optional, Union

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
            'truncated, not a torch checkpoint, or holds objects outside the allow-list: '
            're-download or re-save it, or pass another checkpoint.'
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
        raise InvalidInputError(f'{path}: the checkpoint holds no weights (no state_dict); pass '
                                'a .pth file written by tools/train.py.')
    if all(k.startswith('module.') for k in state):  # saved from a DDP-wrapped model
        state = {k[len('module.'):]: v for k, v in state.items()}
    return state


def state_dict_misfit(own: Dict[str, tuple], state: Dict[str, torch.Tensor]) -> tuple:
    """Compare weight names and shapes: ``(missing, unexpected, mismatched)`` sorted key lists.

    Args:
        own: the model's key -> shape (``{k: tuple(v.shape) for k, v in model.state_dict()}``).
        state: weights from :func:`state_dict_of`.
    """
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    mismatched = sorted(k for k in set(own) & set(state)
                        if tuple(own[k]) != tuple(state[k].shape))
    return missing, unexpected, mismatched


def describe_misfit(own: Dict[str, tuple], state: Dict[str, torch.Tensor], missing: list,
                    unexpected: list, mismatched: list) -> str:
    """One text naming each kind of misfit (counted, the first few keys listed)."""

    def listing(keys, n=8):
        more = f' ... (+{len(keys) - n} more)' if len(keys) > n else ''
        return ', '.join(keys[:n]) + more

    parts = []
    if missing:
        parts.append(f'{len(missing)} missing key(s): {listing(missing)}')
    if unexpected:
        parts.append(f'{len(unexpected)} unexpected key(s): {listing(unexpected)}')
    if mismatched:
        shapes = [f'{k} {tuple(state[k].shape)} vs {tuple(own[k])}' for k in mismatched]
        parts.append(f'{len(mismatched)} shape mismatch(es) (checkpoint vs config): '
                     f'{listing(shapes, 4)}')
    return '; '.join(parts)


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
    own = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    missing, unexpected, mismatched = state_dict_misfit(own, state)
    if missing or unexpected or mismatched:
        raise InvalidInputError(
            f'{path}: the checkpoint does not fit the config {config_name!r}: '
            + describe_misfit(own, state, missing, unexpected, mismatched)
            + '. Pass the config the checkpoint was trained with.')
    model.load_state_dict(state, strict=True)


# ------------------------------------------------------------------ network kind checks
#: network kind -> what it is, and what to pass instead (for error messages)
NETWORK_KINDS = {
    '3d-embedding': ('a 3D dense anatomical embedding network (SAM / UAE)',
                     'a SAM / UAE checkpoint, e.g. checkpoints/sam_default.pth (CT) or '
                     'checkpoints/uae_m_default.pth (CT and MR)'),
    '2d-embedding': ('a 2D radiograph embedding network (Adam / Eve)',
                     'an Adam checkpoint, e.g. checkpoints/adam_default.pth'),
    '2d-classifier': ('a 2D radiograph classifier (Adam fine-tuning)',
                      'a classifier checkpoint written by tools/train.py with a classifier '
                      'config'),
    '2d-dense-embedding': ('a 2D dense anatomical embedding network (SAM on radiographs)',
                           'a 2D SAM checkpoint, e.g. checkpoints/sam2d_default.pth'),
}
#: config ``model.type`` -> network kind (a SAM whose backbone is ``Planar``-wrapped 2D
#: convolutions is of kind ``'2d-dense-embedding'``, see :func:`config_kind`)
MODEL_TYPE_KINDS = {'SAM': '3d-embedding', 'UAES': '3d-embedding', 'Adam': '2d-embedding',
                    'AdamV2': '2d-embedding', 'RadiographClassifier': '2d-classifier'}
#: the kinds whose network can also be built in 2D (the 2D SAM), and the kind it then is
PLANAR_KINDS = {'3d-embedding': '2d-dense-embedding'}


def model_type_of(cfg) -> Optional[str]:
    """``cfg.model.type`` of an mmengine config (or dict), ``None`` when it has none."""
    model = cfg.get('model') if hasattr(cfg, 'get') else None
    kind = model.get('type') if hasattr(model, 'get') else None
    return kind if isinstance(kind, str) else None


def config_kind(cfg) -> Optional[str]:
    """The network kind (a :data:`NETWORK_KINDS` key) a config builds, ``None`` when its model
    type is unknown: the kind of ``model.type``, and for SAM / UAE-S with a ``Planar``
    backbone (2D convolutions on one-slice volumes) ``'2d-dense-embedding'``."""
    kind = MODEL_TYPE_KINDS.get(model_type_of(cfg))
    model = cfg.get('model') if hasattr(cfg, 'get') else None
    backbone = model.get('backbone') if hasattr(model, 'get') else None
    btype = backbone.get('type') if hasattr(backbone, 'get') else None
    if kind in PLANAR_KINDS and isinstance(btype, str) and btype.split('.')[-1] == 'Planar':
        return PLANAR_KINDS[kind]
    return kind


def spatial_dims_of(state: Dict[str, torch.Tensor]) -> Optional[int]:
    """2 or 3: the spatial dimensions of the convolutions of a state dict (weights of 4 or 5
    dimensions), ``None`` when it has no convolution. The backbone's convolutions decide when
    there are ``backbone.*`` weights (the 2D SAM's coarse head has (1, 3, 3) 3D kernels)."""
    back = {k: v for k, v in state.items() if k.startswith('backbone.')}
    dims = {v.dim() for k, v in (back or state).items()
            if k.endswith('weight') and v.dim() in (4, 5)}
    if 5 in dims:
        return 3
    return 2 if 4 in dims else None


def checkpoint_network(ckpt: dict, state: Dict[str, torch.Tensor]) -> dict:
    """What network a loaded checkpoint holds, from its stored config and its weights.

    Args:
        ckpt: the dict from :func:`load_checkpoint_file`.
        state: its weights (:func:`state_dict_of`).

    Returns:
        ``dict(type, kind, dims)``: the config's ``model.type`` (``None`` when the checkpoint
        stores no readable config), its kind (a :data:`NETWORK_KINDS` key or ``None``) and
        the spatial dimensions of its convolutions (2, 3 or ``None``).
    """
    meta = ckpt.get('meta') if isinstance(ckpt.get('meta'), dict) else {}
    mtype, kind = None, None
    text = meta.get('cfg')
    if text:
        try:
            from mmengine.config import Config
            cfg = Config.fromstring(text, '.py') if isinstance(text, str) else Config(text)
            mtype, kind = model_type_of(cfg), config_kind(cfg)
        except Exception:  # noqa: BLE001 - an unreadable stored config: judge by the weights
            mtype, kind = None, None
    dims = spatial_dims_of(state)
    if kind in PLANAR_KINDS and dims == 2:  # a 2D SAM whose stored config says so by weights
        kind = PLANAR_KINDS[kind]
    return dict(type=mtype, kind=kind, dims=dims)


def _network_text(net: dict) -> str:
    if net.get('kind'):
        text = NETWORK_KINDS[net['kind']][0]
    elif net.get('dims'):
        text = f'a network of {net["dims"]}D convolutions'
    else:
        text = 'an unknown network'
    return text + (f' (model type {net["type"]})' if net.get('type') else '')


def check_network_fits(path: str, found: dict, expect_kind: Union[None, str, tuple] = None,
                       cfg=None, config_name: str = '', user: str = 'this command') -> None:
    """Refuse a checkpoint whose network is not the one the task or the config needs, before
    any model is built.

    Args:
        path: the checkpoint file (for the message).
        found: :func:`checkpoint_network` of it.
        expect_kind: the :data:`NETWORK_KINDS` key the task needs, or a tuple of keys any
            of which will do (``None``: any).
        cfg: the config the weights will be loaded into (``None``: not known yet); its
            ``model.type`` must be of the checkpoint's kind, and its convolutions of the
            same dimension.
        config_name: the config's name (for the message).
        user: who needs the network, e.g. ``'tools/match.py'`` (for the message).

    Raises:
        InvalidInputError: naming what the checkpoint holds, what was expected, and what to
            pass instead.
    """
    got = _network_text(found)
    if expect_kind is not None:
        kinds = (expect_kind,) if isinstance(expect_kind, str) else tuple(expect_kind)
        dims = {int(k[0]) for k in kinds}
        wrong = (found['kind'] is not None and found['kind'] not in kinds) or \
            (found['kind'] is None and found['dims'] is not None and found['dims'] not in dims)
        if wrong:
            what = ' or '.join(NETWORK_KINDS[k][0] for k in kinds)
            fix = ' or '.join(NETWORK_KINDS[k][1] for k in kinds)
            raise InvalidInputError(f'{path}: the checkpoint holds {got}, but {user} needs '
                                    f'{what}; pass {fix}.')
    if cfg is None:
        return
    ctype = model_type_of(cfg)
    ckind = config_kind(cfg)
    cdims = int(ckind[0]) if ckind else None
    if (found['kind'] and ckind and found['kind'] != ckind) or \
            (found['dims'] and cdims and found['dims'] != cdims):
        raise InvalidInputError(
            f'{path}: the checkpoint holds {got}, but the config {config_name!r} builds '
            f'{NETWORK_KINDS[ckind][0]} (model type {ctype}); pass the config the checkpoint '
            'was trained with (or none: the one stored in the checkpoint is used).')


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
