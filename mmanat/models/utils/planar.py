"""Run a 2D network (e.g. mmdet's ResNet and FPN) on one-slice volumes ``(N, C, 1, H, W)``.

The 2D SAM keeps SAM's volume interface (pair sampling, coordinate pooling, matching all work
on ``(N, C, D, H, W)`` grids; a radiograph is a volume of depth 1, see
:mod:`mmanat.structures.planar`) while its convolutions are the 2D ones of the wrapped module,
so mmdet's backbones and necks are used as they are instead of re-implemented.
"""
from typing import Union

import torch
from mmengine.model import BaseModule
from torch import nn

from mmanat.registry import MODELS
from mmanat.utils.exceptions import InvalidInputError


def _squeeze(x: torch.Tensor, name: str) -> torch.Tensor:
    if x.dim() != 5 or x.shape[2] != 1:
        raise InvalidInputError(
            f'{name}: a 2D network runs on one-slice volumes (N, C, 1, H, W); got '
            f'{tuple(x.shape)}. Give 2D images (radiographs), not 3D volumes.')
    return x[:, :, 0]


def _unsqueeze(out):
    if isinstance(out, torch.Tensor):
        return out[:, :, None]
    if isinstance(out, (list, tuple)):
        return type(out)(_unsqueeze(o) for o in out)
    raise InvalidInputError(f'Planar: the wrapped module returned {type(out).__name__}; '
                            'expected a tensor or a list / tuple of tensors.')


@MODELS.register_module()
class Planar(BaseModule):
    """Wrap a 2D module so it takes and returns one-slice volumes.

    Inputs: a tensor ``(N, C, 1, H, W)`` or a list / tuple of them (e.g. the stage outputs fed
    to an FPN); each is squeezed to ``(N, C, H, W)``, the wrapped module runs, and every
    output tensor gets its depth axis back: ``(N, C', 1, H', W')``.

    Args:
        module: MODELS config of the 2D module (``type='mmdet.ResNet'``, ``'mmdet.FPN'``,
            ...) or a module.

    Example::

        backbone=dict(type='Planar', module=dict(type='mmdet.ResNet', depth=18,
                                                  in_channels=1, out_indices=(0, 1, 2, 3)))
    """

    def __init__(self, module: Union[dict, nn.Module], init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        self.module = MODELS.build(module) if isinstance(module, dict) else module

    def forward(self, x):
        name = f'Planar({type(self.module).__name__})'
        if isinstance(x, (list, tuple)):
            x = type(x)(_squeeze(t, name) for t in x)
        else:
            x = _squeeze(x, name)
        return _unsqueeze(self.module(x))
