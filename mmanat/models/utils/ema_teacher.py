"""The teacher of a self-distillation model as an exponential moving average (EMA) of the
student, with the cosine momentum schedule of DINO (Caron et al., "Emerging properties in
self-supervised vision transformers", ICCV 2021, Sec. 3.1 "Teacher network" and Appendix:
``lambda`` follows a cosine schedule from 0.996 to 1 during training), as used by Adam v2
(Hosseinzadeh Taher et al., CVPR 2024, Sec. 3: the teacher is an EMA of the student)."""
from __future__ import annotations

import math
from typing import Iterable

import torch
from torch import nn

from mmanat.utils.exceptions import InvalidInputError


def cosine_momentum(step: int, total: int, base: float = 0.996, final: float = 1.0) -> float:
    """EMA momentum at ``step`` of a cosine schedule from ``base`` (step 0) to ``final``
    (step ``total``; later steps stay at ``final``):
    ``final - (final - base) * (cos(pi * step / total) + 1) / 2``.

    Args:
        step: iterations done (>= 0).
        total: schedule length in iterations (>= 1).
        base, final: momentum at the start and at the end, in [0, 1].
    """
    if int(total) < 1 or not (0.0 <= base <= 1.0 and 0.0 <= final <= 1.0):
        raise InvalidInputError(f'cosine_momentum: total >= 1 and momenta in [0, 1] needed, '
                                f'got total={total}, base={base}, final={final}.')
    t = min(max(int(step), 0), int(total)) / float(total)
    return float(final - (final - base) * (math.cos(math.pi * t) + 1.0) / 2.0)


def _params(modules: Iterable[nn.Module]) -> list:
    return [p for m in modules for p in m.parameters()]


@torch.no_grad()
def ema_update(teachers: Iterable[nn.Module], students: Iterable[nn.Module],
               momentum: float) -> None:
    """``teacher = m * teacher + (1 - m) * student`` over the parameters of paired modules
    (same architecture, same parameter order; one fused op). Buffers (BatchNorm statistics)
    are not averaged: the teacher keeps its own, computed on its own inputs, as in DINO.

    Raises:
        InvalidInputError: the two sides hold different parameter lists.
    """
    ts, ss = _params(teachers), _params(students)
    if len(ts) != len(ss) or any(t.shape != s.shape for t, s in zip(ts, ss)):
        raise InvalidInputError('ema_update: teacher and student must have the same '
                                f'parameters, got {len(ts)} and {len(ss)} tensors.')
    m = float(momentum)
    torch._foreach_mul_(ts, m)
    torch._foreach_add_(ts, [s.detach().to(t.dtype) for t, s in zip(ts, ss)], alpha=1.0 - m)


@torch.no_grad()
def copy_student_to_teacher(teachers: Iterable[nn.Module],
                            students: Iterable[nn.Module]) -> None:
    """Teacher := student (parameters and buffers), e.g. at initialisation."""
    for t, s in zip(teachers, students):
        t.load_state_dict(s.state_dict())
