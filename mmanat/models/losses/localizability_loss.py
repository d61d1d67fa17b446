"""Localizability loss of Adam v2 (Hosseinzadeh Taher et al., "Representing part-whole
hierarchies in foundation models by learning localizability, composability, and
decomposability from anatomy via self-supervision", CVPR 2024, Sec. 3, "Localizability"): the
self-distillation cross-entropy of DINO (Caron et al., ICCV 2021, Eq. 2 and Algorithm 1)
between the teacher's output on the anchor and the student's outputs on views of it."""
from __future__ import annotations

from typing import Sequence, Union

import torch
import torch.distributed as torch_dist
import torch.nn.functional as F
from torch import nn

from mmanat.registry import MODELS
from mmanat.utils.exceptions import InvalidInputError


@MODELS.register_module()
class LocalizabilityLoss(nn.Module):
    """``L = 1/V sum_v mean_i H(P_t(i), P_s^v(i))`` with ``H(a, b) = -sum_k a_k log b_k``,

    ``P_t = softmax((t - c) / T_t)`` (centred, sharpened teacher output, no gradient) and
    ``P_s^v = softmax(s^v / T_s)`` for each of the ``V`` student views (Adam v2: one global
    view and 8 local crops of the anchor; the teacher sees the anchor only, so there is no
    same-view pair to skip). The centre ``c`` (a buffer, saved in checkpoints) follows
    ``c = m c + (1 - m) mean_batch(t)`` after each training step (:meth:`update_center`,
    DINO Eq. 4; the batch mean is taken over all ranks). Computed in float32.

    Args:
        out_channels: K, the number of prototypes (the head's output size).
        student_temp: T_s (0.1).
        teacher_temp: T_t (0.04).
        center_momentum: m (0.9).
        loss_weight: factor on the loss (Adam v2: 1).
    """

    def __init__(self, out_channels: int, student_temp: float = 0.1, teacher_temp: float = 0.04,
                 center_momentum: float = 0.9, loss_weight: float = 1.0):
        super().__init__()
        if int(out_channels) < 1 or student_temp <= 0 or teacher_temp <= 0 or \
                not 0.0 <= center_momentum <= 1.0:
            raise InvalidInputError(
                f'LocalizabilityLoss: out_channels >= 1, temperatures > 0 and 0 <= '
                f'center_momentum <= 1 needed, got {out_channels}, {student_temp}, '
                f'{teacher_temp}, {center_momentum}.')
        self.student_temp = float(student_temp)
        self.teacher_temp = float(teacher_temp)
        self.center_momentum = float(center_momentum)
        self.loss_weight = float(loss_weight)
        self.register_buffer('center', torch.zeros(1, int(out_channels)))

    def teacher_probs(self, teacher_out: torch.Tensor) -> torch.Tensor:
        """``softmax((t - c) / T_t)`` of ``(N, K)`` teacher outputs (detached, float32)."""
        return F.softmax((teacher_out.detach().float() - self.center) / self.teacher_temp, -1)

    def forward(self, student_out: Union[torch.Tensor, Sequence[torch.Tensor]],
                teacher_out: torch.Tensor) -> torch.Tensor:
        """Args:
            student_out: ``(V, N, K)`` (or a list of ``V`` ``(N, K)``) student outputs.
            teacher_out: ``(N, K)`` teacher outputs on the anchors.

        Returns the loss (times ``loss_weight``).
        """
        if isinstance(student_out, (list, tuple)):
            student_out = torch.stack(list(student_out))
        if student_out.dim() != 3 or teacher_out.dim() != 2 or \
                student_out.shape[1:] != teacher_out.shape or \
                teacher_out.shape[1] != self.center.shape[1]:
            raise InvalidInputError(
                f'LocalizabilityLoss: expected student (V, N, K) and teacher (N, K) with K = '
                f'{self.center.shape[1]}, got {tuple(student_out.shape)} and '
                f'{tuple(teacher_out.shape)}.')
        p_t = self.teacher_probs(teacher_out)  # (N, K)
        log_p_s = F.log_softmax(student_out.float() / self.student_temp, dim=-1)  # (V, N, K)
        loss = -(p_t[None] * log_p_s).sum(-1).mean()
        return loss * self.loss_weight

    @torch.no_grad()
    def update_center(self, teacher_out: torch.Tensor) -> None:
        """``c = m c + (1 - m) * mean(teacher_out)`` (batch mean over every rank)."""
        t = teacher_out.detach().float()
        total = t.sum(dim=0, keepdim=True)
        count = torch.tensor([float(t.shape[0])], device=t.device)
        if torch_dist.is_available() and torch_dist.is_initialized() and \
                torch_dist.get_world_size() > 1:
            torch_dist.all_reduce(total)
            torch_dist.all_reduce(count)
        batch_center = total / count.clamp_min(1.0)
        self.center.mul_(self.center_momentum).add_(batch_center.to(self.center.dtype),
                                                    alpha=1.0 - self.center_momentum)
