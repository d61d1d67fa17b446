"""Repair non-finite BatchNorm running statistics in a model or a checkpoint state dict.

Storing a checkpoint in fp16 turns every BatchNorm running variance above 65504 into
``inf``; in eval mode such a channel then outputs a constant (its normalised value is 0), and
``inf`` survives any further training (the running average of ``inf`` stays ``inf``). The
shipped SAM-tiny, UAE-S and UAE-M checkpoints held one (stem channel 13). Two repairs:

* ``'reset'`` (for further training): the statistics of the affected channels become mean 0,
  variance 1, so training re-estimates them (with momentum 0.1 within a few dozen
  iterations); the learnt affine weight and bias are kept.
* ``'preserve'`` (for publishing a model as it is): mean 0, variance 1 *and* affine weight 0.
  A channel whose variance was ``+inf`` (mean finite) output exactly its bias in eval mode;
  it still does, so the network computes the same function with finite tensors only.
"""
from typing import Dict, List, Mapping

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

__all__ = ['find_nonfinite_bn_stats', 'reset_nonfinite_bn_stats', 'repair_bn_state_dict']


def find_nonfinite_bn_stats(state_dict: Mapping[str, torch.Tensor]) -> Dict[str, List[int]]:
    """Channels with a non-finite running mean or variance, per BatchNorm layer.

    Args:
        state_dict: a model state dict (keys ``<layer>.running_mean`` / ``.running_var``).

    Returns:
        ``{layer prefix: [channel, ...]}`` for every layer with at least one bad channel.
    """
    bad = {}
    for key, var in state_dict.items():
        if not key.endswith('.running_var'):
            continue
        prefix = key[:-len('.running_var')]
        mean = state_dict.get(prefix + '.running_mean')
        mask = ~torch.isfinite(var.float())
        if mean is not None:
            mask |= ~torch.isfinite(mean.float())
        if bool(mask.any()):
            bad[prefix] = mask.nonzero().flatten().tolist()
    return bad


def repair_bn_state_dict(state_dict: Dict[str, torch.Tensor],
                         mode: str = 'reset') -> Dict[str, List[int]]:
    """In place: set the running mean to 0 and the variance to 1 on every channel whose
    running mean or variance is non-finite; the statistics are cast to float32 (an fp16
    variance cannot hold values above 65504). With ``mode='preserve'`` the channel's affine
    weight is set to 0 as well, which keeps the eval-mode output of a channel whose variance
    was ``+inf`` exactly (its bias) - see the module docstring.

    Args:
        state_dict: a model state dict, modified in place.
        mode: ``'reset'`` (for training on) or ``'preserve'`` (for publishing).

    Returns:
        The channels that were repaired, as :func:`find_nonfinite_bn_stats`.
    """
    if mode not in ('reset', 'preserve'):
        raise ValueError(f"repair_bn_state_dict: mode must be 'reset' or 'preserve', got "
                         f'{mode!r}')
    bad = find_nonfinite_bn_stats(state_dict)
    values = [('running_mean', 0.0), ('running_var', 1.0)]
    if mode == 'preserve':
        values.append(('weight', 0.0))
    for prefix, channels in bad.items():
        idx = torch.as_tensor(channels, dtype=torch.long)
        for name, value in values:
            key = f'{prefix}.{name}'
            if key in state_dict:
                t = state_dict[key].clone()
                t = t.float() if name != 'weight' else t
                t[idx] = value
                state_dict[key] = t
    return bad


@torch.no_grad()
def reset_nonfinite_bn_stats(model: nn.Module) -> Dict[str, List[int]]:
    """In place on a model: reset the non-finite running statistics of its BatchNorm layers
    (mean 0, variance 1, per bad channel).

    Returns:
        ``{module name: [channel, ...]}`` of the channels reset.
    """
    bad = {}
    for name, m in model.named_modules():
        if not isinstance(m, _BatchNorm) or m.running_var is None:
            continue
        mask = ~torch.isfinite(m.running_var) | ~torch.isfinite(m.running_mean)
        if bool(mask.any()):
            m.running_mean[mask] = 0.0
            m.running_var[mask] = 1.0
            bad[name] = mask.nonzero().flatten().tolist()
    return bad
