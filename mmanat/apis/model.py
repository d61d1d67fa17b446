"""Building a model for inference and naming it.

:func:`init_model` builds the network of a config, loads a checkpoint into it
(:mod:`mmanat.utils.checkpoint`) and records its identity (config name, checkpoint file, SHA-256),
which every :class:`~mmanat.structures.EmbeddingMaps` and embedding cache carries so that maps
of different models are never matched against each other.
"""
from __future__ import annotations

import hashlib
import os
import os.path as osp
from typing import Any, Dict, Optional, Union

import torch

from ..utils.checkpoint import (NETWORK_KINDS, check_network_fits, checkpoint_network,
                                config_kind, fit_state_dict, load_checkpoint_file,
                                model_type_of, spatial_dims_of, state_dict_of)
from ..utils.device import default_device
from ..utils.exceptions import InvalidInputError
from ..utils.model_zoo import load_zoo, sha256_file
from .published import (PUBLISHED_MODELS, infer_published_kind, is_published_state_dict,
                        published_config, published_model_and_state)

_CONVERTED: set = set()


def _say_converted_once(path: str, kind: str) -> None:
    """Tell once per file and process that a released checkpoint was converted in memory."""
    key = osp.abspath(path)
    if key in _CONVERTED:
        return
    _CONVERTED.add(key)
    info = PUBLISHED_MODELS[kind]
    print(f'[mmanat] {osp.basename(path)}: the released {info.title} checkpoint, converted in '
          f'memory to {info.config}; convert it once to skip this step: python '
          f'tools/model_converters/sam_to_mmanat.py {path} {kind}_published.pth', flush=True)


def _config_and_name(config, checkpoint_meta: Optional[dict], checkpoint: Optional[str]):
    """The config to build and its short name (used in the model identity)."""
    from mmengine.config import Config
    if config is None:
        text = (checkpoint_meta or {}).get('cfg')
        if not text:
            raise InvalidInputError(
                f'no config given and the checkpoint {checkpoint} carries none (meta["cfg"]); '
                'pass the config the checkpoint was trained with, e.g. '
                'configs/sam/sam_r18-fpn3d_8xb6-20k_ct-2mm.py.')
        cfg = Config.fromstring(text, '.py') if isinstance(text, str) else Config(text)
        if checkpoint_meta.get('config_name'):  # written by the published-model converter
            return cfg, str(checkpoint_meta['config_name'])
        # a shipped checkpoint: the config named in its model zoo entry; otherwise
        # tools/train.py's layout, work_dirs/<config name>/iter_*.pth
        entry = load_zoo(osp.dirname(os.fspath(checkpoint)) or '.').get(
            osp.basename(os.fspath(checkpoint))) if checkpoint else None
        if entry and entry.get('config'):
            return cfg, osp.splitext(osp.basename(str(entry['config'])))[0]
        name = osp.basename(osp.dirname(osp.abspath(checkpoint))) if checkpoint else ''
        return cfg, name or str(checkpoint_meta.get('experiment_name') or 'checkpoint_config')
    if isinstance(config, Config):
        name = osp.splitext(osp.basename(config.filename))[0] if config.filename else 'config'
        return config, name
    if isinstance(config, dict):
        return Config(config), 'config'
    path = os.fspath(config)
    if not osp.isfile(path):
        raise InvalidInputError(
            f'{path}: config file not found (working directory {os.getcwd()}); pass a config '
            'such as configs/sam/sam_r18-fpn3d_8xb6-20k_ct-2mm.py.')
    return Config.fromfile(path), osp.splitext(osp.basename(path))[0]


def state_dict_sha256(model: torch.nn.Module) -> str:
    """SHA-256 over the names, shapes and bytes of every tensor in ``model.state_dict()``.

    Args:
        model: any module.

    Returns:
        The hex digest (64 characters).
    """
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(str(t.dtype).encode())
        h.update(t.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes()
                 if t.numel() else b'')
    return h.hexdigest()


def model_identity(model: torch.nn.Module) -> Dict[str, Any]:
    """The identity of ``model`` recorded in embedding maps and caches.

    :func:`init_model` sets it (config name, checkpoint file name and its SHA-256). For any
    other module it is computed once from the weights (``sha256`` of the state dict) and kept
    on the module as ``model.mmanat_identity``.

    Args:
        model: the embedding network.

    Returns:
        A copy of ``dict(config, checkpoint, sha256, source)``.
    """
    ident = getattr(model, 'mmanat_identity', None)
    if ident is None:
        ident = dict(config=type(model).__name__, checkpoint=None,
                     sha256=state_dict_sha256(model), source='weights')
        try:
            model.mmanat_identity = ident
        except AttributeError:  # pragma: no cover - exotic modules
            pass
    return dict(ident)


#: the kinds :func:`mmanat.apis.embed` can run: the 3D SAM / UAE and the 2D SAM
DENSE_EMBEDDING_KINDS = ('3d-embedding', '2d-dense-embedding')


def model_spatial_dims(model: torch.nn.Module) -> Optional[int]:
    """2 for a network of 2D convolutions (the 2D SAM: its backbone is ``Planar``-wrapped),
    3 for a 3D one, ``None`` when its weights do not tell (no convolution)."""
    return spatial_dims_of(model.state_dict())


def init_model(config=None, checkpoint: Optional[str] = None,
               device: Union[None, str, torch.device] = None,
               cfg_options: Optional[dict] = None, expect: Union[None, str, tuple] = None,
               user: str = 'init_model') -> torch.nn.Module:
    """Build a model from a config and load a checkpoint, ready for :func:`embed`.

    Args:
        config: config file path, ``mmengine.Config`` or dict with a ``model`` entry. ``None``
            uses the config stored in the checkpoint (``meta['cfg']``, written by
            tools/train.py).
        checkpoint: ``.pth`` file (an mmengine checkpoint or a plain state dict). ``None``
            keeps the random initialisation (for tests and speed measurements). A released
            SAM / UAE-S / UAE-M file (``SAM.pth``, ...) is converted in memory
            (:mod:`mmanat.apis.published`), with the mmanat config of the same network unless
            ``config`` is given.
        device: ``'cpu'``, ``'cuda'``, ``'cuda:1'``...; ``None``: GPU when present, else CPU.
        cfg_options: entries merged into the config (``Config.merge_from_dict``).
        expect: the network kind the caller needs (a key of
            :data:`mmanat.utils.checkpoint.NETWORK_KINDS`: ``'3d-embedding'`` for SAM / UAE,
            ``'2d-dense-embedding'`` for the 2D SAM on radiographs, ``'2d-embedding'`` for
            Adam), or a tuple of kinds any of which will do (:data:`DENSE_EMBEDDING_KINDS`:
            either SAM); ``None`` accepts any. The checkpoint (and the config) are checked
            against it before the model is built.
        user: who needs the model, named in the error message (e.g. ``'tools/match.py'``).

    Returns:
        The model in eval mode on ``device``, with ``model.cfg`` and ``model.mmanat_identity``
        (config name, checkpoint file name, SHA-256 of the checkpoint file, or of the weights
        for a random initialisation).

    Raises:
        InvalidInputError: missing config/checkpoint, unreadable checkpoint, a checkpoint (or
            config) of another network kind than ``expect`` or than the config's, or a
            checkpoint that does not fit the config (naming the missing / unexpected /
            mismatched keys).
    """
    from mmengine.registry import init_default_scope

    from ..registry import MODELS
    if config is None and checkpoint is None:
        raise InvalidInputError(
            'init_model needs a config (and normally a checkpoint), e.g. '
            "init_model('configs/sam/sam_r18-fpn3d_8xb6-20k_ct-2mm.py', 'iter_20000.pth').")
    ckpt = load_checkpoint_file(checkpoint) if checkpoint is not None else None
    meta = ckpt.get('meta') if isinstance(ckpt, dict) and isinstance(ckpt.get('meta'),
                                                                       dict) else {}
    path = None if checkpoint is None else os.fspath(checkpoint)
    state = None if ckpt is None else state_dict_of(ckpt, path)
    kind = None
    found = None
    if state is not None and not meta.get('cfg') and is_published_state_dict(state):
        # a released SAM / UAE file: its network is ours under other key names
        kind = infer_published_kind(ckpt, state, path)
        found = dict(type=None, kind='3d-embedding', dims=3)
        if config is None:
            cfg = published_config(kind)
            config_name = osp.splitext(osp.basename(PUBLISHED_MODELS[kind].config))[0]
    elif state is not None:
        found = checkpoint_network(ckpt, state)
    if found is not None:  # the network kind, before reading a config or building anything
        check_network_fits(path, found, expect, user=user)
    if kind is None or config is not None:
        cfg, config_name = _config_and_name(config, meta, checkpoint)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if 'model' not in cfg:
        raise InvalidInputError(f'config {config_name!r} has no "model" entry.')
    if found is not None:
        check_network_fits(path, found, None, cfg=cfg, config_name=config_name, user=user)
    elif expect is not None:  # random initialisation: the config must build the right kind
        ctype = model_type_of(cfg)
        ckind = config_kind(cfg)
        kinds = (expect,) if isinstance(expect, str) else tuple(expect)
        if ckind is not None and ckind not in kinds:
            raise InvalidInputError(
                f'config {config_name!r} builds {NETWORK_KINDS[ckind][0]} (model type '
                f'{ctype}), but {user} needs '
                + ' or '.join(NETWORK_KINDS[k][0] for k in kinds) + '; pass a config of '
                'that kind.')
    init_default_scope(cfg.get('default_scope', 'mmanat'))
    if kind is not None:
        model, state, cfg, kind = published_model_and_state(ckpt, path, kind, cfg)
        model.load_state_dict(state, strict=True)
        _say_converted_once(path, kind)
    else:
        model_cfg = cfg.model.copy() if hasattr(cfg.model, 'copy') else dict(cfg.model)
        model = MODELS.build(model_cfg)
        if state is not None:
            fit_state_dict(model, state, path, config_name)
    if state is not None:
        identity = dict(config=config_name, checkpoint=osp.basename(path),
                        sha256=sha256_file(path), source='checkpoint')
    else:
        identity = dict(config=config_name, checkpoint=None, sha256=state_dict_sha256(model),
                        source='random-init')
    model.cfg = cfg
    model.mmanat_identity = identity
    device = default_device() if device is None else torch.device(device)
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise InvalidInputError(f'device {device} requested but CUDA is not available; use '
                                '--device cpu.')
    return model.to(device).eval()
