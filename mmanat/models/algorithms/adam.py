"""Adam (Hosseinzadeh Taher et al., DART 2023): MoCo v2 with a memory-bank queue, trained
coarse-to-fine on anatomy parts (Anatomy Decomposer) with the Purposive Pruner."""
import copy
from typing import Any, Dict, List, Optional, Union

import torch
import torch.distributed as torch_dist
import torch.nn.functional as F
from mmengine.model import BaseModel
from mmengine.structures import BaseDataElement
from torch import nn

from mmanat.registry import MODELS
from mmanat.utils.exceptions import InvalidInputError


def _dist_ready() -> bool:
    return torch_dist.is_available() and torch_dist.is_initialized() and \
        torch_dist.get_world_size() > 1


@torch.no_grad()
def concat_all_gather(x: torch.Tensor) -> torch.Tensor:
    """Concatenate ``x`` (``(n_r, ...)``, ``n_r`` may differ per rank) from every rank in rank
    order; ``x`` itself when not distributed. No gradient."""
    if not _dist_ready():
        return x
    world = torch_dist.get_world_size()
    n = torch.tensor([x.shape[0]], device=x.device, dtype=torch.long)
    sizes = [torch.zeros_like(n) for _ in range(world)]
    torch_dist.all_gather(sizes, n)
    sizes = [int(s.item()) for s in sizes]
    m = max(sizes)
    if x.shape[0] < m:
        x = torch.cat([x, x.new_zeros((m - x.shape[0], ) + tuple(x.shape[1:]))])
    out = [torch.empty_like(x) for _ in range(world)]
    torch_dist.all_gather(out, x.contiguous())
    return torch.cat([o[:s] for o, s in zip(out, sizes)])


@MODELS.register_module()
class Adam(BaseModel):
    """MoCo v2 with a queue of ``queue_len`` keys, a momentum key encoder and the Purposive
    Pruner switch (``prune``), as in Adam v1.

    Query encoder = ``backbone`` + ``neck`` (e.g. ``type='mmdet.ResNet'``, depth 50, and
    :class:`MoCoMLPNeck` 2048-2048-128); the key encoder (``momentum_backbone``,
    ``momentum_neck``) is a copy updated as ``key = m * key + (1 - m) * query`` before each
    key computation. The queue (``queue``: ``(K, D)`` unit vectors) and its pointer
    (``queue_ptr``) are buffers, so checkpoints carry them and a new stage continues from
    them. Enqueueing gathers the keys of all ranks (rank order), so every rank holds the
    same queue; the queue only changes in ``mode='loss'`` with the model in training mode
    (never during validation or feature extraction).

    ``inputs``: ``(N, 2, C, H, W)`` (or a list of ``(2, C, H, W)``) view pairs from
    :class:`~mmanat.datasets.transforms.PackTwoViewInputs`; view 0 -> query, view 1 -> key.

    Args:
        backbone: backbone config/module returning a tuple of maps (last one used).
        neck: projection head config/module (``(maps) -> (N, D)``).
        loss: :class:`PrunedInfoNCELoss` config (``temperature`` 0.2, ``prune_threshold`` 0.8).
        queue_len: K (65536 reference).
        feat_dim: D (128).
        momentum: m (0.999).
        prune: apply the Purposive Pruner (set per stage by
            :class:`~mmanat.engine.hooks.AnatomyStageHook`; off at n = 0).
        shuffle_bn: MoCo's shuffled BatchNorm for the key encoder across ranks (needs equal
            batch sizes on all ranks; a no-op without distribution).
        data_preprocessor: default ``BaseDataPreprocessor`` (moves tensors to the device).
    """

    def __init__(self, backbone: Union[dict, nn.Module], neck: Union[dict, nn.Module],
                 loss: Union[dict, nn.Module] = dict(type='PrunedInfoNCELoss', temperature=0.2,
                                                     prune_threshold=0.8),
                 queue_len: int = 65536, feat_dim: int = 128, momentum: float = 0.999,
                 prune: bool = False, shuffle_bn: bool = False,
                 data_preprocessor: Optional[Union[dict, nn.Module]] = None,
                 init_cfg: Optional[dict] = None):
        if data_preprocessor is None:
            data_preprocessor = dict(type='BaseDataPreprocessor')
        if isinstance(data_preprocessor, dict):
            data_preprocessor = MODELS.build(data_preprocessor)
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if int(queue_len) < 1 or int(feat_dim) < 1 or not 0.0 <= float(momentum) <= 1.0:
            raise InvalidInputError(f'Adam: queue_len >= 1, feat_dim >= 1 and 0 <= momentum '
                                    f'<= 1 needed, got {queue_len}, {feat_dim}, {momentum}.')
        build = lambda cfg: MODELS.build(cfg) if isinstance(cfg, dict) else cfg  # noqa: E731
        self.backbone = build(backbone)
        self.neck = build(neck)
        self.loss_module = build(loss)
        self.momentum_backbone = copy.deepcopy(self.backbone)
        self.momentum_neck = copy.deepcopy(self.neck)
        for p in list(self.momentum_backbone.parameters()) + \
                list(self.momentum_neck.parameters()):
            p.requires_grad_(False)
        self.queue_len = int(queue_len)
        self.feat_dim = int(feat_dim)
        self.momentum = float(momentum)
        self.prune = bool(prune)
        self.shuffle_bn = bool(shuffle_bn)
        self.register_buffer('queue', F.normalize(torch.randn(self.queue_len, self.feat_dim),
                                                  dim=1))
        self.register_buffer('queue_ptr', torch.zeros(1, dtype=torch.long))

    # ------------------------------------------------------------------ encoders
    def init_weights(self) -> None:
        """Initialise the query encoder, then copy it into the key encoder."""
        super().init_weights()
        self.copy_query_to_key()

    @torch.no_grad()
    def copy_query_to_key(self) -> None:
        """Key encoder := query encoder (parameters and buffers)."""
        self.momentum_backbone.load_state_dict(self.backbone.state_dict())
        self.momentum_neck.load_state_dict(self.neck.state_dict())

    @torch.no_grad()
    def momentum_update(self) -> None:
        """``key = m * key + (1 - m) * query`` over all encoder parameters (one fused op)."""
        qs = list(self.backbone.parameters()) + list(self.neck.parameters())
        ks = list(self.momentum_backbone.parameters()) + list(self.momentum_neck.parameters())
        torch._foreach_mul_(ks, self.momentum)
        torch._foreach_add_(ks, qs, alpha=1.0 - self.momentum)

    def extract_feat(self, inputs: torch.Tensor, momentum: bool = False) -> torch.Tensor:
        """Eve: globally average-pooled last backbone map, ``(N, C, H, W) -> (N, C_feat)``
        (2048 for ResNet-50). ``momentum=True`` uses the key encoder."""
        net = self.momentum_backbone if momentum else self.backbone
        out = net(inputs)
        x = out[-1] if isinstance(out, (tuple, list)) else out
        return x.mean(dim=(2, 3)) if x.dim() == 4 else x.flatten(1)

    def _embed(self, x: torch.Tensor, momentum: bool) -> torch.Tensor:
        if momentum:
            return F.normalize(self.momentum_neck(self.momentum_backbone(x)), dim=1)
        return F.normalize(self.neck(self.backbone(x)), dim=1)

    @torch.no_grad()
    def _keys(self, x: torch.Tensor) -> torch.Tensor:
        """Key embeddings, with MoCo's batch shuffle across ranks when asked."""
        if not (self.shuffle_bn and _dist_ready()):
            return self._embed(x, True)
        n = x.shape[0]
        x_all = concat_all_gather(x)
        world, rank = torch_dist.get_world_size(), torch_dist.get_rank()
        if x_all.shape[0] != n * world:  # unequal batches: shuffling would misalign
            return self._embed(x, True)
        perm = torch.randperm(x_all.shape[0], device=x.device)
        torch_dist.broadcast(perm, src=0)
        mine = perm.view(world, n)[rank]
        k = self._embed(x_all[mine], True)
        k_all = concat_all_gather(k)
        unshuffle = torch.argsort(perm)
        return k_all[unshuffle].view(world, n, -1)[rank]

    @torch.no_grad()
    def enqueue(self, keys: torch.Tensor) -> None:
        """Write the keys of every rank into the queue at the pointer (wrapping around)."""
        keys = concat_all_gather(keys.detach().to(self.queue.dtype))
        n = keys.shape[0]
        if n == 0:
            return
        if n > self.queue_len:
            keys = keys[-self.queue_len:]
            n = self.queue_len
        ptr = int(self.queue_ptr.item())
        idx = (ptr + torch.arange(n, device=self.queue.device)) % self.queue_len
        self.queue[idx] = keys
        self.queue_ptr[0] = (ptr + n) % self.queue_len

    # ------------------------------------------------------------------ modes
    @staticmethod
    def _as_views(inputs) -> torch.Tensor:
        if isinstance(inputs, (list, tuple)):
            inputs = torch.stack(list(inputs))
        if inputs.dim() != 5 or inputs.shape[1] < 2:
            raise InvalidInputError(f'Adam: inputs must be (N, 2, C, H, W) view pairs, got '
                                    f'{tuple(inputs.shape)}.')
        return inputs

    def loss(self, inputs, data_samples=None) -> Dict[str, torch.Tensor]:
        """MoCo loss of view 0 (query) against view 1 (key) and the queue; then enqueue."""
        views = self._as_views(inputs)
        q = self._embed(views[:, 0], False)
        with torch.no_grad():
            if self.training:
                self.momentum_update()
            k = self._keys(views[:, 1])
        loss, stats = self.loss_module(q, k, self.queue.clone().detach(), prune=self.prune,
                                       return_stats=True)
        if self.training:
            self.enqueue(k)
        return dict(loss=loss, pruned_frac=stats['pruned_frac'].detach())

    def predict(self, inputs, data_samples=None) -> List[BaseDataElement]:
        """Eve features of view 0 of each sample in ``data_samples[i].embedding``."""
        x = inputs if not isinstance(inputs, (list, tuple)) else torch.stack(list(inputs))
        if x.dim() == 5:
            x = x[:, 0]
        feats = self.extract_feat(x)
        samples = list(data_samples) if data_samples is not None else \
            [BaseDataElement() for _ in range(feats.shape[0])]
        for s, f in zip(samples, feats):
            s.embedding = f
        return samples

    def forward(self, inputs, data_samples: Any = None, mode: str = 'tensor'):
        """``mode``: ``'loss'`` (training), ``'predict'`` or ``'tensor'`` (Eve features of
        ``(N, C, H, W)`` images, or of view 0 of ``(N, V, C, H, W)``)."""
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode == 'tensor':
            x = inputs if not isinstance(inputs, (list, tuple)) else torch.stack(list(inputs))
            return self.extract_feat(x[:, 0] if x.dim() == 5 else x)
        raise InvalidInputError(f"Adam: unknown mode {mode!r}; use 'loss', 'predict' or "
                                "'tensor'.")
