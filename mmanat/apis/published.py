"""The published SAM / UAE-S / UAE-M checkpoints, read by mmanat.

The authors of SAM (Yan et al., IEEE TMI 2022) and UAE (Bai et al., arXiv:2311.15111) released
three trained models as mmcv 1.x runner checkpoints (``{'meta', 'state_dict'[, 'optimizer']}``,
keys possibly prefixed ``module.``):

========  ======================================  =============================================
kind      released file                           mmanat config (same network)
========  ======================================  =============================================
sam       ``SAM.pth``                             configs/sam/sam_r18-fpn3d_8xb6-20k_ct-2mm.py
uae_s     ``SAMv2_iter_20000.pth``                configs/sam/uae-s_r18-fpn3d_8xb5-20k_ct-2mm.py
uae_m     ``CrossSAM_iter_20000_ct_mr_inter_1``   configs/sam/uae_m.py
========  ======================================  =============================================

Their network is exactly mmanat's reference-scale one (``configs/_base_/models/
sam_r18_fpn.py``); only five key prefixes differ, renamed by :data:`KEY_RENAMES`. The
conversion is strict: every released tensor must be used and every parameter and buffer of
the mmanat model filled with the exact shape, otherwise it fails naming the keys.

* :func:`convert_published_checkpoint` writes a converted file that carries its config, so
  ``init_model(checkpoint=DST)`` needs nothing else (``tools/model_converters/sam_to_mmanat.py``);
* :func:`published_model_and_state` does the same in memory: :func:`mmanat.apis.init_model`
  calls it when it is handed a released file directly, so every tool accepts one.
"""
from __future__ import annotations

import datetime
import os
import os.path as osp
import re
from collections import OrderedDict
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import torch

from ..utils.exceptions import InvalidInputError
from ..utils.model_zoo import sha256_file


@dataclass(frozen=True)
class PublishedModel:
    """One released model: its kind, file name, mmanat config and reference framework."""
    kind: str
    title: str
    file_name: str
    config: str
    framework: str
    semantic_head: bool


PUBLISHED_MODELS: Dict[str, PublishedModel] = {
    'sam': PublishedModel('sam', 'SAM', 'SAM.pth',
                          'configs/sam/sam_r18-fpn3d_8xb6-20k_ct-2mm.py', 'Sam', False),
    'uae_s': PublishedModel('uae_s', 'UAE-S', 'SAMv2_iter_20000.pth',
                            'configs/sam/uae-s_r18-fpn3d_8xb5-20k_ct-2mm.py',
                            'Sam_uniform_cross_volume_dual_head_mean_vector', True),
    'uae_m': PublishedModel('uae_m', 'UAE-M', 'CrossSAM_iter_20000_ct_mr_inter_1.pth',
                            'configs/sam/uae_m.py',
                            'Sam_uniform_cross_volume_dual_head_mri_ct', True),
}

#: (released prefix, mmanat prefix), applied to the first match; other keys are unchanged
KEY_RENAMES: Tuple[Tuple[str, str], ...] = (
    ('backbone.conv1.', 'backbone.stem.'),
    ('neck.fpn_convs.0.', 'neck.out_conv.'),
    ('semantic_head.fpn_convs.0.', 'semantic_head.out_conv.'),
    ('read_out_head.lateral_convs.0.', 'coarse_head.convs.0.'),
    ('read_out_head.fpn_convs.0.', 'coarse_head.convs.1.'),
)

#: keys only the released layout has (mmanat's own checkpoints have none of them)
_PUBLISHED_MARKERS = ('read_out_head.', 'backbone.conv1.conv.')


def _strip_module(state: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    if state and all(k.startswith('module.') for k in state):
        return {k[len('module.'):]: v for k, v in state.items()}
    return state


def rename_key(key: str) -> str:
    """The mmanat name of a released state-dict key."""
    for old, new in KEY_RENAMES:
        if key.startswith(old):
            return new + key[len(old):]
    return key


def released_key(key: str) -> str:
    """The released name of an mmanat state-dict key (inverse of :func:`rename_key`)."""
    for old, new in KEY_RENAMES:
        if key.startswith(new):
            return old + key[len(new):]
    return key


def is_published_state_dict(state: Dict[str, torch.Tensor]) -> bool:
    """True when ``state`` has the released SAM/UAE key layout (``read_out_head.*`` or
    ``backbone.conv1.conv.*``, with or without ``module.``)."""
    return any(k.startswith(_PUBLISHED_MARKERS) for k in _strip_module(dict(state)))


def _meta_text(ckpt: dict) -> str:
    meta = ckpt.get('meta') if isinstance(ckpt, dict) else None
    if not isinstance(meta, dict):
        return ''
    return ' '.join(str(meta.get(k, '')) for k in ('config', 'cfg', 'exp_name'))


def infer_published_kind(ckpt: dict, state: Dict[str, torch.Tensor], path: str) -> str:
    """Which released model ``state`` is: ``'sam'``, ``'uae_s'`` or ``'uae_m'``.

    Without a semantic head it is SAM. UAE-S and UAE-M have the same keys, so the framework
    class named in the stored mmcv config (``meta['config']``) decides, else the released
    file name (``SAMv2...`` / ``CrossSAM...``).

    Raises:
        InvalidInputError: a semantic head but nothing that tells UAE-S from UAE-M.
    """
    state = _strip_module(state)
    if not any(k.startswith('semantic_head.') for k in state):
        return 'sam'
    text = _meta_text(ckpt)
    for kind in ('uae_m', 'uae_s'):
        if PUBLISHED_MODELS[kind].framework in text:
            return kind
    name = osp.basename(path).lower()
    if 'crosssam' in name or re.search(r'ct[_-]?mri?', name):
        return 'uae_m'
    if 'samv2' in name or 'uae_s' in name or 'uae-s' in name:
        return 'uae_s'
    raise InvalidInputError(
        f'{path}: a released UAE checkpoint (it has a semantic head), but neither its stored '
        'config nor its file name says whether it is UAE-S (SAMv2_iter_20000.pth) or UAE-M '
        '(CrossSAM_iter_20000_ct_mr_inter_1.pth); pass --model uae_s or --model uae_m.')


def repo_root() -> str:
    """The folder holding ``configs/`` next to the installed package (an editable install or
    a clone)."""
    return osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def published_config(kind: str):
    """The mmanat config (``mmengine.Config``) of a released model kind."""
    from mmengine.config import Config
    if kind not in PUBLISHED_MODELS:
        raise InvalidInputError(
            f'unknown published model {kind!r}; use one of {", ".join(PUBLISHED_MODELS)}.')
    path = osp.join(repo_root(), PUBLISHED_MODELS[kind].config)
    if not osp.isfile(path):
        raise InvalidInputError(
            f'{path}: the config of the published {PUBLISHED_MODELS[kind].title} model is '
            'missing; mmanat must be installed from a clone (pip install -e .) so that '
            'configs/ is present.')
    return Config.fromfile(path)


def _listing(keys: List[str], n: int = 6) -> str:
    more = f' ... (+{len(keys) - n} more)' if len(keys) > n else ''
    return ', '.join(keys[:n]) + more


def convert_state_dict(state: Dict[str, torch.Tensor], model: torch.nn.Module, path: str,
                       kind: str) -> 'OrderedDict[str, torch.Tensor]':
    """Rename a released state dict onto ``model`` and check it fills it exactly.

    Args:
        state: the released weights (``module.`` prefix allowed).
        model: the mmanat model built from :func:`published_config` of ``kind``.
        path: the released file (for messages).
        kind: ``'sam'``, ``'uae_s'`` or ``'uae_m'``.

    Returns:
        The weights under mmanat names, in the model's order, with the model's dtypes.

    Raises:
        InvalidInputError: a released tensor unused, a model entry not filled, or a shape
            that differs (names in the released layout, counts, first few of each).
    """
    title = PUBLISHED_MODELS[kind].title
    renamed = {rename_key(k): v for k, v in _strip_module(dict(state)).items()}
    own = model.state_dict()
    missing = [released_key(k) for k in own if k not in renamed]
    unexpected = [released_key(k) for k in renamed if k not in own]
    mismatched = [f'{released_key(k)} {tuple(renamed[k].shape)} (expected {tuple(v.shape)})'
                  for k, v in own.items() if k in renamed
                  and tuple(renamed[k].shape) != tuple(v.shape)]
    if missing or unexpected or mismatched:
        parts = []
        if missing:
            parts.append(f'{len(missing)} missing tensor(s): {_listing(missing)}')
        if unexpected:
            parts.append(f'{len(unexpected)} unexpected tensor(s): {_listing(unexpected)}')
        if mismatched:
            parts.append(f'{len(mismatched)} shape mismatch(es): {_listing(mismatched, 3)}')
        raise InvalidInputError(
            f'{path}: not the released {title} network ({"; ".join(parts)}). Is it the right '
            f'file ({PUBLISHED_MODELS[kind].file_name}) and --model?')
    bad = [released_key(k) for k, v in renamed.items()
           if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise InvalidInputError(
            f'{path}: {len(bad)} tensor(s) hold NaN or inf values ({_listing(bad)}); the '
            'file is damaged.')
    return OrderedDict((k, renamed[k].to(own[k].dtype)) for k in own)


def published_model_and_state(ckpt: dict, path: str, kind: Optional[str] = None,
                              cfg=None):
    """Build the mmanat model of a released checkpoint and its converted weights.

    Args:
        ckpt: the loaded checkpoint dict (:func:`mmanat.utils.checkpoint.load_checkpoint_file`).
        path: the file it came from.
        kind: ``'sam'``, ``'uae_s'``, ``'uae_m'``; ``None`` infers it
            (:func:`infer_published_kind`).
        cfg: the config to build (default: :func:`published_config` of the kind).

    Returns:
        ``(model, state, cfg, kind)``: the model (random weights, CPU), the converted state
        dict (not yet loaded), the config and the kind.
    """
    from mmengine.registry import init_default_scope

    from ..registry import MODELS
    from ..utils.checkpoint import state_dict_of
    state = state_dict_of(ckpt, path)
    if not is_published_state_dict(state):
        raise InvalidInputError(
            f'{path}: not a released SAM / UAE checkpoint (none of its keys starts with '
            f'{" or ".join(_PUBLISHED_MARKERS)}); an mmanat checkpoint loads directly '
            '(--checkpoint FILE), without conversion.')
    if kind is None:
        kind = infer_published_kind(ckpt, state, path)
    if kind not in PUBLISHED_MODELS:
        raise InvalidInputError(
            f'unknown published model {kind!r}; use one of {", ".join(PUBLISHED_MODELS)}.')
    cfg = published_config(kind) if cfg is None else cfg
    init_default_scope(cfg.get('default_scope', 'mmanat'))
    model = MODELS.build(cfg.model.copy() if hasattr(cfg.model, 'copy') else dict(cfg.model))
    return model, convert_state_dict(state, model, path, kind), cfg, kind


def convert_published_checkpoint(src: str, dst: str, kind: Optional[str] = None) -> dict:
    """Convert a released SAM / UAE-S / UAE-M file into an mmanat checkpoint.

    The output holds ``state_dict`` (mmanat names, float32 as released) and ``meta`` with the
    mmanat config (``cfg``, so ``init_model(checkpoint=dst)`` needs no config), its name, and
    the source (file name, SHA-256, kind). It is written atomically: nothing is left at
    ``dst`` when anything fails.

    Args:
        src: the released file (``SAM.pth``, ``SAMv2_iter_20000.pth``,
            ``CrossSAM_iter_20000_ct_mr_inter_1.pth``).
        dst: the output ``.pth``.
        kind: ``'sam'``, ``'uae_s'`` or ``'uae_m'``; ``None`` infers it.

    Returns:
        ``dict(kind, config, num_tensors, num_parameters, dst)``.
    """
    from ..fileio.atomic import atomic_path
    from ..utils.checkpoint import load_checkpoint_file
    src, dst = os.fspath(src), os.fspath(dst)
    if osp.abspath(src) == osp.abspath(dst):
        raise InvalidInputError(f'{dst}: the output would overwrite the input; choose another '
                                'file name.')
    if osp.isdir(dst):
        raise InvalidInputError(f'{dst}: is a folder; give the output file name (.pth).')
    ckpt = load_checkpoint_file(src)
    model, state, cfg, kind = published_model_and_state(ckpt, src, kind)
    info = PUBLISHED_MODELS[kind]
    config_name = osp.splitext(osp.basename(info.config))[0]
    meta = dict(cfg=cfg.pretty_text, config_name=config_name,
                published=dict(kind=kind, model=info.title, source=osp.basename(src),
                               source_sha256=sha256_file(src), framework=info.framework),
                converted=datetime.datetime.now(datetime.timezone.utc).isoformat(
                    timespec='seconds'))
    with atomic_path(dst) as tmp:
        torch.save(dict(meta=meta, state_dict=state), tmp)
    n_params = sum(p.numel() for p in model.parameters())
    return dict(kind=kind, config=info.config, num_tensors=len(state),
                num_parameters=n_params, dst=dst)
