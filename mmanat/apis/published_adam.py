"""The authors' released Adam checkpoints (v1: Hosseinzadeh Taher et al., DART 2023; v2:
CVPR 2024) as mmanat checkpoints.

Key layouts assumed (the authors' files were not at hand when this was written; these are
the layouts of the code bases the releases come from):

* Adam v1: a torchvision ResNet-50 state dict (``conv1``, ``bn1``, ``layer1.0.conv1``, ...,
  ``layer1.0.downsample.0/1``), optionally under ``state_dict`` and with the MoCo v2 prefixes
  ``module.encoder_q.`` (query encoder; ``fc.0`` / ``fc.2`` = the 2048-2048-128 MLP head),
  ``module.encoder_k.`` (key encoder) and ``module.queue`` ``(128, K)`` /
  ``module.queue_ptr``, or ``module.`` alone; a classifier ``fc`` is dropped. mmdet's
  ResNet uses the torchvision names, so the backbone keys carry over unchanged.
* Adam v2: a DINO-style checkpoint (Caron et al., ICCV 2021, ``main_dino.py``) with
  ``teacher`` / ``student`` dicts (optionally ``module.``-prefixed) holding ``backbone.*``
  in the facebook ConvNeXt names (``downsample_layers.N.{0,1}``,
  ``stages.N.M.{dwconv, norm, pwconv1, pwconv2, gamma}``, final ``norm``) and ``head.*`` in
  DINO's head names (``mlp.0/2/4``, ``last_layer.weight_g/v``). A plain ConvNeXt state dict
  (facebook or mmpretrain names) is accepted too.

Every released backbone tensor must be used and every backbone weight of the mmanat network
filled with the exact shape, or nothing is written. Parts the release does not hold (e.g. the
compose / decompose heads of v2, the MoCo head of a bare ResNet) keep the config's random
initialisation and are listed in ``meta['published']['random_init']``.
"""
from __future__ import annotations

import argparse
import datetime
import os
import os.path as osp
import re
from typing import Dict, Optional, Tuple

import torch

from ..utils.exceptions import InvalidInputError
from ..utils.model_zoo import sha256_file
from .published import repo_root

#: the mmanat config each released model is converted into
ADAM_CONFIGS = {'v1': 'configs/adam/adam_r50-mlp_8xb32-3x200e_cxr14.py',
                'v2': 'configs/adam/adamv2_convnext-b-dino_8xb32-3x200e_cxr14.py'}

_FB_BLOCK = {'dwconv': 'depthwise_conv', 'pwconv1': 'pointwise_conv1',
             'pwconv2': 'pointwise_conv2', 'norm': 'norm'}


def _strip(state: Dict[str, torch.Tensor], prefix: str) -> Dict[str, torch.Tensor]:
    return {k[len(prefix):] if k.startswith(prefix) else k: v for k, v in state.items()}


def _tensors(d) -> Dict[str, torch.Tensor]:
    return {k: v for k, v in d.items() if isinstance(v, torch.Tensor)} \
        if isinstance(d, dict) else {}


def released_state(ckpt: dict, which: str = 'teacher') -> Tuple[dict, Optional[dict]]:
    """``(main, student)`` state dicts of a loaded release: for a DINO-style file the
    ``which`` dict (``teacher``) and the student (``None`` otherwise); ``module.`` removed."""
    if isinstance(ckpt.get('teacher'), dict) or isinstance(ckpt.get('student'), dict):
        main = _tensors(ckpt.get(which) or ckpt.get('student'))
        other = _tensors(ckpt.get('student')) if which != 'student' else None
        return _strip(main, 'module.'), (_strip(other, 'module.') if other else None)
    for key in ('state_dict', 'model', 'model_state_dict'):
        if isinstance(ckpt.get(key), dict):
            return _strip(_tensors(ckpt[key]), 'module.'), None
    return _strip(_tensors(ckpt), 'module.'), None


def adam_version(state: Dict[str, torch.Tensor]) -> str:
    """``'v1'`` (ResNet keys) or ``'v2'`` (ConvNeXt keys) of a released state dict."""
    if any(re.search(r'(^|\.)stages\.\d+\.\d+\.(dwconv|depthwise_conv)\.', k) for k in state):
        return 'v2'
    if any(re.search(r'(^|\.)layer1\.0\.conv1\.weight$', k) for k in state):
        return 'v1'
    raise InvalidInputError('not an Adam release: neither ResNet (layer1.0.conv1) nor ConvNeXt '
                            '(stages.N.M.dwconv) weights found.')


def convert_v1_state(state: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Adam v1 (MoCo v2 ResNet-50) release -> :class:`~mmanat.models.algorithms.Adam` keys
    (``backbone.*``, and when present ``neck.*``, ``momentum_backbone.*``,
    ``momentum_neck.*``, ``queue`` ``(K, D)`` unit rows, ``queue_ptr``)."""
    out = {}
    enc = {'encoder_q.': ('backbone.', 'neck.'), 'encoder_k.': ('momentum_backbone.',
                                                               'momentum_neck.')}
    has_enc = any(k.startswith('encoder_q.') for k in state)
    for k, v in state.items():
        if k == 'queue':  # MoCo stores (D, K) columns
            out['queue'] = torch.nn.functional.normalize(v.t().float(), dim=1)
            continue
        if k == 'queue_ptr':
            out['queue_ptr'] = v.long().reshape(1)
            continue
        pre = next((p for p in enc if k.startswith(p)), None)
        if has_enc and pre is None:
            continue
        bb, neck = enc[pre] if pre else ('backbone.', None)
        name = k[len(pre):] if pre else k
        m = re.match(r'fc\.(\d+)\.(weight|bias)$', name)
        if m and neck:
            out[f'{neck}mlp.{m.group(1)}.{m.group(2)}'] = v
        elif not name.startswith('fc.'):
            out[bb + name] = v
    return out


def convnext_key(name: str) -> str:
    """A facebook (or mmpretrain) ConvNeXt key -> mmanat/mmpretrain :class:`ConvNeXt`."""
    m = re.match(r'stages\.(\d+)\.(\d+)\.(\w+)(\..*)?$', name)
    if m:
        part = _FB_BLOCK.get(m.group(3), m.group(3))
        return f'stages.{m.group(1)}.{m.group(2)}.{part}{m.group(4) or ""}'
    if name.startswith('norm.'):
        return 'norm3.' + name[len('norm.'):]
    return name


def convert_v2_state(state: Dict[str, torch.Tensor], backbone: str = 'backbone.',
                     head: str = 'teacher_head.') -> Dict[str, torch.Tensor]:
    """Adam v2 (DINO-style ConvNeXt) state dict -> :class:`AdamV2` keys under ``backbone``
    and ``head`` prefixes (the classification ``head.weight/bias`` of a plain ConvNeXt is
    dropped)."""
    has_bb = any(k.startswith('backbone.') for k in state)
    out = {}
    for k, v in state.items():
        if k.startswith('head.'):
            if re.match(r'head\.(mlp\.\d+|last_layer)\.', k):
                out[head + k[len('head.'):]] = v
            continue
        if has_bb and not k.startswith('backbone.'):
            continue
        out[backbone + convnext_key(k[len('backbone.'):] if has_bb else k)] = v
    return out


def _load_release(src: str) -> dict:
    from ..utils.checkpoint import load_checkpoint_file
    # DINO checkpoints store their argparse options next to the weights
    with torch.serialization.safe_globals([argparse.Namespace]):
        return load_checkpoint_file(src)


def converted_adam_state(ckpt: dict, cfg, version: str, which: str = 'teacher') -> tuple:
    """Build the network of ``cfg`` and fill it from a loaded release.

    Returns:
        ``(model, state, random_init)``: the mmanat state dict (complete, strict) and the
        sorted prefixes of the parts kept at their random initialisation.

    Raises:
        InvalidInputError: a released backbone tensor left unused, or a backbone weight
            missing or of another shape.
    """
    from mmengine.registry import init_default_scope

    from ..registry import MODELS
    init_default_scope(cfg.get('default_scope', 'mmanat'))
    model = MODELS.build(cfg.model)
    model.init_weights()
    own = model.state_dict()
    main, student = released_state(ckpt, which)
    if version == 'v1':
        mapped = convert_v1_state(main)
        copies = {'momentum_backbone.': 'backbone.', 'momentum_neck.': 'neck.'}
    else:
        mapped = convert_v2_state(main)
        if student:
            mapped.update(convert_v2_state(student, 'student_backbone.', 'student_head.'))
        copies = {'student_backbone.': 'backbone.', 'student_head.': 'teacher_head.'}
    unknown = sorted(k for k in mapped if k not in own)
    bad = sorted(k for k in mapped if k in own and mapped[k].shape != own[k].shape)
    missing = sorted(k for k in own if k.startswith('backbone.') and k not in mapped
                     and not k.endswith('num_batches_tracked'))
    if unknown or bad or missing:
        raise InvalidInputError(
            f'the released Adam {version} weights do not fit {ADAM_CONFIGS[version]}: '
            f'{len(unknown)} unused (e.g. {unknown[:4]}), {len(bad)} of another shape (e.g. '
            f'{bad[:4]}), {len(missing)} backbone weights missing (e.g. {missing[:4]}).')
    state = dict(own)
    state.update({k: v.to(own[k].dtype) for k, v in mapped.items()})
    for dst, src in copies.items():  # a side the release lacks starts as its partner
        for k in own:
            if k.startswith(dst) and k not in mapped and src + k[len(dst):] in state:
                state[k] = state[src + k[len(dst):]].clone()
    random_init = sorted({k.split('.')[0] for k in own if k not in mapped and not any(
        k.startswith(d) and src + k[len(d):] in mapped for d, src in copies.items())
        and not k.endswith('num_batches_tracked')})
    model.load_state_dict(state, strict=True)
    return model, state, random_init


def convert_adam_checkpoint(src: str, dst: str, version: Optional[str] = None,
                            config: Optional[str] = None, which: str = 'teacher') -> dict:
    """Convert a released Adam v1 / v2 checkpoint into an mmanat checkpoint (with its config,
    so ``init_model(checkpoint=dst)``, ``tools/extract_eve.py --checkpoint dst`` and the
    radiograph classifier's ``pretrained=dst`` need nothing else).

    Args:
        src, dst: released file and output ``.pth`` (written atomically).
        version: ``'v1'`` or ``'v2'``; ``None`` reads it from the keys.
        config: mmanat config to fill (default: :data:`ADAM_CONFIGS`).
        which: the network of a DINO-style file that becomes the Eve backbone
            (``'teacher'``, or ``'student'``).

    Returns:
        ``dict(version, config, num_tensors, num_parameters, random_init, dst)``.
    """
    from mmengine.config import Config

    from ..fileio.atomic import atomic_path
    src, dst = os.fspath(src), os.fspath(dst)
    if osp.abspath(src) == osp.abspath(dst) or osp.isdir(dst):
        raise InvalidInputError(f'{dst}: give a new output file name (.pth), not the input '
                                'or a folder.')
    if which not in ('teacher', 'student'):
        raise InvalidInputError(f"which must be 'teacher' or 'student', got {which!r}.")
    ckpt = _load_release(src)
    version = version or adam_version(released_state(ckpt, which)[0])
    if version not in ADAM_CONFIGS:
        raise InvalidInputError(f"version must be 'v1' or 'v2', got {version!r}.")
    config = config or osp.join(repo_root(), ADAM_CONFIGS[version])
    if not osp.isfile(config):
        raise InvalidInputError(f'{config}: config not found.')
    cfg = Config.fromfile(config)
    model, state, random_init = converted_adam_state(ckpt, cfg, version, which)
    meta = dict(cfg=cfg.pretty_text,
                config_name=osp.splitext(osp.basename(config))[0],
                published=dict(kind=f'adam_{version}', source=osp.basename(src),
                               source_sha256=sha256_file(src), network=which,
                               random_init=random_init),
                converted=datetime.datetime.now(datetime.timezone.utc).isoformat(
                    timespec='seconds'))
    with atomic_path(dst) as tmp:
        torch.save(dict(meta=meta, state_dict=state), tmp)
    return dict(version=version, config=config, num_tensors=len(state),
                num_parameters=sum(p.numel() for p in model.parameters()),
                random_init=random_init, dst=dst)
