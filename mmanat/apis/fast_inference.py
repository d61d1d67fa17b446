"""An inference-only copy of an embedding network, for faster :func:`mmanat.apis.embed`.

:func:`embed` runs the network once per volume (or window) with frozen weights, so it can run
an equivalent network that does less work than the trained one:

* **BatchNorm folded into the convolution before it** (eval mode only: ``BN(conv(x)) =
  conv'(x)`` with ``w' = w * g / sqrt(v + eps)``, ``b' = (b - m) * g / sqrt(v + eps) + beta``;
  ``torch.nn.utils.fuse_conv_bn_eval``). One pass over every activation less; the result is
  the same function up to float32 rounding.
* **channels_last_3d** memory format on CPU (weights and activations ``N, D, H, W, C``):
  oneDNN's native layout, so no reorder before and after every convolution. Same function.
* ``torch.inference_mode`` instead of ``no_grad`` (no version counters / view tracking).

The copy is made once per model and kept (weakly) until the model's weights, buffers, device,
train/eval mode or plain top-level attributes change (every in-place update of a parameter,
an optimiser step or ``load_state_dict``, bumps a tensor's version counter, which is part of
the key); the caller's model is never modified. A model in training mode is not optimised
(its BatchNorm layers use batch statistics).

Measured (``tools/benchmark_inference.py --compare-embedding``; the table is in
docs/en/advanced_guides/tiled_inference.md, "Faster embedding"): full-size SAM on a 160^3
volume at 2 mm on a 2-core CPU, and the shipped tiny model.
"""
from __future__ import annotations

import copy
import weakref
from typing import Tuple

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

_CACHE: 'weakref.WeakKeyDictionary[nn.Module, Tuple[tuple, nn.Module]]' = \
    weakref.WeakKeyDictionary()


def fuse_conv_bn(module: nn.Module) -> int:
    """Fold every eval-mode BatchNorm of an mmcv ``ConvModule`` (order ``conv`` then
    ``norm``) into its convolution, in place.

    mmcv's ``mmcv.cnn.fuse_conv_bn`` is not used: it pairs a BatchNorm with the previous
    ``nn.Conv2d`` child only (not ``Conv3d``) and reshapes the scale to 4 dimensions, which
    is wrong for 5-D (3D) weights. ``torch.nn.utils.fuse_conv_bn_eval`` does the arithmetic
    for any dimension.

    Args:
        module: the network (modified in place: call it on a copy).

    Returns:
        The number of BatchNorm layers folded.
    """
    from mmcv.cnn import ConvModule
    n = 0
    for m in module.modules():
        if not isinstance(m, ConvModule) or not m.with_norm:
            continue
        norm = m.norm
        order = tuple(m.order)
        if (not isinstance(norm, _BatchNorm) or norm.training or norm.running_mean is None
                or m.conv.training or order.index('norm') != order.index('conv') + 1
                or not isinstance(m.conv, nn.modules.conv._ConvNd)
                or isinstance(m.conv, nn.modules.conv._ConvTransposeNd)):
            continue
        m.conv = torch.nn.utils.fuse_conv_bn_eval(m.conv, norm)
        setattr(m, m.norm_name, nn.Identity())
        m.with_norm = False
        n += 1
    return n


def _to_channels_last(t: torch.Tensor) -> torch.Tensor:
    if t.dim() == 5:
        return t.to(memory_format=torch.channels_last_3d)
    if t.dim() == 4:
        return t.to(memory_format=torch.channels_last)
    return t


_PLAIN = (bool, int, float, str, tuple, type(None))


def _key(model: nn.Module, device: torch.device) -> tuple:
    """What the copy depends on: device, mode, every parameter's and buffer's storage and
    version counter, and the model's plain top-level attributes (e.g. UAE-S's
    ``test_heads``)."""
    tensors = [*model.parameters(), *model.buffers()]
    plain = tuple(sorted((k, v) for k, v in vars(model).items()
                         if isinstance(v, _PLAIN) and k != 'training'))
    return (str(device), bool(model.training), plain,
            tuple((t.data_ptr(), t._version, t.dtype) for t in tensors))


def build_inference_model(model: nn.Module, channels_last: bool) -> nn.Module:
    """An eval-mode copy of ``model`` with BatchNorm folded into convolutions
    (:func:`fuse_conv_bn`) and, with ``channels_last``, its 3D (2D) convolution weights in
    ``channels_last_3d`` (``channels_last``) format. The copy's gradients are off."""
    fast = copy.deepcopy(model).eval()
    for p in fast.parameters():
        p.requires_grad_(False)
    fuse_conv_bn(fast)
    if channels_last:
        fast._apply(_to_channels_last)
    if hasattr(fast, 'channels_last'):
        # SAM's own switch would also convert the maps back to (N, C, D, H, W) inside
        # extract_feat, a copy of the largest map that embed's crop makes anyway;
        # forward_features converts the input instead
        fast.channels_last = False
    fast.mmanat_fast_inference = dict(folded_bn=True, channels_last=bool(channels_last))
    return fast


def inference_model(model: nn.Module, device: torch.device) -> nn.Module:
    """The optimised inference copy of ``model`` (:func:`build_inference_model`), built once
    and reused while the model's weights, buffers, device and mode are unchanged; the model
    itself when it is in training mode.

    channels_last_3d is used on CPU only (measured there; GPU convolutions run under AMP).
    """
    if model.training:
        return model
    key = _key(model, device)
    hit = _CACHE.get(model)
    if hit is not None and hit[0] == key:
        return hit[1]
    fast = build_inference_model(model, channels_last=device.type == 'cpu')
    _CACHE[model] = (key, fast)
    return fast
