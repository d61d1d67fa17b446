"""SupConMean: the organ-supervised prototype-to-voxel loss of UAE-S (Bai et al., 2023).

For one group of images (the two images of an inter-subject pair), with unit semantic
embeddings ``f_u`` of every voxel ``u`` of the group and labels nearest-resampled to the
semantic grid, each foreground label ``c > 0`` present in the group gets a prototype

    p_c = mean of f_v over the voxels v of label c (over BOTH images)

and the loss

    L_c = - mean_{v in c} log( exp(p_c . f_v / tau) / sum_u exp(p_c . f_u / tau) )
    L   = mean over the labels c > 0 present of L_c

where ``u`` runs over every (valid) voxel of the group. Background (label 0) has no
prototype: its voxels only appear in the denominators, as negatives.

Exact evaluation with bounded memory
------------------------------------
``L_c = LSE_c - mean_{v in c} p_c . f_v / tau`` with ``LSE_c = logsumexp_u(p_c . f_u / tau)``,
and because ``p_c`` is the mean of the ``f_v`` of label ``c``, the second term is exactly
``|p_c|^2 / tau`` (the same function of the features, hence the same gradient). Only the
``LSE_c`` needs all (label, voxel) logits, a ``(K, M)`` matrix for K labels and M voxels
(about 10^6 voxels for two (120, 180, 180) crops at stride 2, K up to ~100 organs). It is
computed as one matrix product with ``torch.logsumexp`` (which subtracts the maximum logit
of each row before exponentiating). When ``K * M`` exceeds ``max_logits`` the voxels are
processed in chunks of ``max_logits // K`` whose per-chunk logsumexps are combined with
another logsumexp; each chunk runs under ``torch.utils.checkpoint``, so its ``(K, chunk)``
logits are recomputed in the backward pass instead of stored: the result is still exact and
the memory stays at one chunk. Optionally (``max_voxels``), the denominator uses a uniform
random subset of ``max_voxels`` voxels per group, rescaled by ``M / max_voxels`` (an
estimate; the prototypes and the positive term stay exact). The default keeps it exact.
"""
import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from mmanat.registry import MODELS
from mmanat.utils.exceptions import InvalidInputError


def resample_labels_nearest(labels: torch.Tensor, size, stride=None) -> torch.Tensor:
    """Nearest-neighbour resampling of integer maps ``(..., D, H, W)`` to the grid ``size``
    (d, h, w) of a network output with integer ``stride`` (z, y, x).

    Output voxel ``i`` takes input voxel ``stride * i`` (the first voxel of the block it
    covers), which is exact for maps of size ``ceil(D / stride)`` of any ``D`` (no float
    scaling). ``stride=None`` infers it as ``ceil(D / d)``. Sizes that are not such a strided
    grid fall back to ``F.interpolate(mode='nearest')``. Returns int64.
    """
    size = tuple(int(s) for s in size)
    shape = tuple(int(s) for s in labels.shape[-3:])
    if shape == size:
        return labels.long()
    strides = ([-(-n // m) for n, m in zip(shape, size)] if stride is None else
               [int(s) for s in stride])
    if all(s >= 1 and -(-n // s) == m for n, m, s in zip(shape, size, strides)):
        sz, sy, sx = strides
        return labels[..., ::sz, ::sy, ::sx].long()
    lead = labels.shape[:-3]
    flat = labels.reshape((-1, 1) + shape)
    out = F.interpolate(flat.double(), size=size, mode='nearest')  # float64: labels exact
    return out.round().long().reshape(tuple(lead) + size)


def _chunk_lse(protos: torch.Tensor, feats: torch.Tensor, inv_tau: float) -> torch.Tensor:
    """logsumexp over the voxels of a chunk: (K, C), (S, C) -> (K,)."""
    return torch.logsumexp((protos @ feats.t()) * inv_tau, dim=1)


@MODELS.register_module()
class SupConMeanLoss(nn.Module):
    """Prototype-to-voxel supervised contrastive loss of UAE-S (see the module docstring).

    Args:
        temperature: tau (UAE-S: 0.1).
        loss_weight: factor on the loss.
        max_logits: most (label, voxel) logits computed at once; above it the voxels are
            processed in checkpointed chunks (exact, memory bounded). ``None``: never chunk.
        max_voxels: if set, groups with more valid voxels use a random subset of this many
            voxels for the softmax denominator (rescaled; an estimate). ``None`` (default):
            exact, all voxels.

    Call: ``loss(feats, labels, valid=None)``

        feats: (G, V, C, d, h, w) unit embeddings of G groups (pairs) of V images each, or
            (V, C, d, h, w) for one group.
        labels: (G, V, D, H, W) / (V, D, H, W) integer label maps on the image grid (or
            already on the (d, h, w) grid); nearest-resampled to the embedding grid.
        valid: optional bool maps of the same shape as ``labels``; invalid voxels (padding,
            outside the image) are left out of prototypes, positives and denominators.
        stride: (z, y, x) stride of the embedding grid w.r.t. the label grid (default
            inferred, see :func:`resample_labels_nearest`).

    Returns the weighted mean over groups that contain at least one foreground label of
    ``mean_c L_c`` (a scalar; 0, still attached to the graph, when no group has one).
    """

    def __init__(self, temperature: float = 0.1, loss_weight: float = 1.0,
                 max_logits: Optional[int] = 2 ** 26, max_voxels: Optional[int] = None):
        super().__init__()
        if temperature <= 0:
            raise InvalidInputError(f'SupConMeanLoss: temperature={temperature} must be > 0')
        if max_logits is not None and int(max_logits) < 1:
            raise InvalidInputError(f'SupConMeanLoss: max_logits={max_logits} must be >= 1')
        if max_voxels is not None and int(max_voxels) < 1:
            raise InvalidInputError(f'SupConMeanLoss: max_voxels={max_voxels} must be >= 1')
        self.temperature = float(temperature)
        self.loss_weight = float(loss_weight)
        self.max_logits = None if max_logits is None else int(max_logits)
        self.max_voxels = None if max_voxels is None else int(max_voxels)

    def extra_repr(self) -> str:
        return (f'temperature={self.temperature}, loss_weight={self.loss_weight}, '
                f'max_logits={self.max_logits}, max_voxels={self.max_voxels}')

    # ------------------------------------------------------------------ one group
    def group_loss(self, feats: torch.Tensor, labels: torch.Tensor) -> Optional[torch.Tensor]:
        """Unweighted ``mean_c L_c`` of one group given its valid voxels: ``feats`` (M, C)
        float32, ``labels`` (M,) int64. ``None`` when no label > 0 is present."""
        fg = labels > 0
        if not bool(fg.any()):
            return None
        classes, inv = torch.unique(labels[fg], return_inverse=True)
        K, C = classes.numel(), feats.shape[1]
        counts = torch.bincount(inv, minlength=K).to(feats.dtype)
        protos = feats.new_zeros(K, C).index_add(0, inv, feats[fg]) / counts[:, None]
        # mean_{v in c} p_c . f_v / tau == |p_c|^2 / tau  (p_c is the mean of those f_v)
        pos = (protos * protos).sum(1) / self.temperature

        denom_feats, log_scale = feats, 0.0
        M = feats.shape[0]
        if self.max_voxels is not None and M > self.max_voxels:
            pick = torch.randperm(M, device=feats.device)[:self.max_voxels]
            denom_feats, log_scale = feats[pick], math.log(M / self.max_voxels)
        inv_tau = 1.0 / self.temperature
        n = denom_feats.shape[0]
        chunk = n if self.max_logits is None else max(1, self.max_logits // K)
        if chunk >= n:
            lse = _chunk_lse(protos, denom_feats, inv_tau)
        else:
            parts = []
            for start in range(0, n, chunk):
                part = denom_feats[start:start + chunk]
                if torch.is_grad_enabled() and (protos.requires_grad or part.requires_grad):
                    parts.append(checkpoint(_chunk_lse, protos, part, inv_tau,
                                            use_reentrant=False))
                else:
                    parts.append(_chunk_lse(protos, part, inv_tau))
            lse = torch.logsumexp(torch.stack(parts, dim=1), dim=1)
        return (lse + log_scale - pos).mean()

    # ------------------------------------------------------------------ batch
    def forward(self, feats: torch.Tensor, labels: torch.Tensor,
                valid: Optional[torch.Tensor] = None, stride=None) -> torch.Tensor:
        if feats.dim() == 5:
            feats = feats[None]
            labels = labels[None]
            valid = None if valid is None else valid[None]
        if feats.dim() != 6 or labels.dim() != 5 or labels.shape[:2] != feats.shape[:2]:
            raise InvalidInputError(
                'SupConMeanLoss: expected feats (G, V, C, d, h, w) with labels (G, V, D, H, W) '
                f'(or one group without G), got {tuple(feats.shape)} and {tuple(labels.shape)}')
        if valid is not None and tuple(valid.shape) != tuple(labels.shape):
            raise InvalidInputError(
                f'SupConMeanLoss: valid {tuple(valid.shape)} must have the shape of labels '
                f'{tuple(labels.shape)}')
        G, V, C = feats.shape[:3]
        grid = feats.shape[-3:]
        with torch.autocast(device_type=feats.device.type, enabled=False):
            lab = resample_labels_nearest(labels, grid, stride)
            ok = (torch.ones_like(lab, dtype=torch.bool) if valid is None else
                  resample_labels_nearest(valid.to(torch.uint8), grid, stride).bool())
            flat = feats.float().permute(0, 1, 3, 4, 5, 2).reshape(G, -1, C)
            lab = lab.reshape(G, -1)
            ok = ok.reshape(G, -1)
            losses = []
            for g in range(G):  # groups are few (inter pairs per GPU); voxels are vectorised
                sel = ok[g]
                loss_g = self.group_loss(flat[g][sel], lab[g][sel])
                if loss_g is not None:
                    losses.append(loss_g)
            if not losses:
                return feats.float().sum() * 0.0
            return self.loss_weight * torch.stack(losses).mean()
