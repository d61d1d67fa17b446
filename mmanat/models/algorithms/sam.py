"""SAM: self-supervised pixel-wise anatomical embeddings (Yan et al., TMI 2022)."""
import contextlib
import math
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmengine.model import BaseModel
from torch import nn

from mmanat.registry import MODELS, TASK_UTILS
from mmanat.utils.exceptions import InvalidInputError
from ..data_preprocessors.sam_data_preprocessor import pad_mask, pad_views
from ..heads.embedding_head import l2_normalize


def gather_similarities(maps: torch.Tensor, query_index: torch.Tensor,
                        pos_index: torch.Tensor, neg_index: torch.Tensor
                        ) -> Tuple[torch.Tensor, torch.Tensor]:
    """Cosine similarities of sampled voxel triplets, differentiable w.r.t. ``maps``.

    Args:
        maps: (V, C, D, H, W) unit embeddings; voxel index i = view * D*H*W + voxel.
        query_index, pos_index: (Q,) indices; neg_index: (Q, N).

    Returns ``(pos_sim (Q,), neg_sim (Q, N))`` in float32. Uses whichever of "gather the
    (Q, N, C) negatives" and "(Q, V*D*H*W) similarity matrix, then gather" needs less
    memory (the first for the fine level, the second for the small coarse level).

    ``channels_last_3d`` maps (``SAM(channels_last=True)`` in training) are read as their
    (V*D*H*W, C) row table, a view: rows are picked with ``index_select``, whose backward
    (``index_add``) is several times cheaper on the CPU than that of the advanced indexing
    used for contiguous maps. Same values either way.
    """
    V, C = maps.shape[:2]
    N = neg_index.shape[1]
    if maps.dim() == 5 and not maps.is_contiguous() and maps.is_contiguous(
            memory_format=torch.channels_last_3d):
        rows = maps.float().permute(0, 2, 3, 4, 1).reshape(-1, C)   # a view
        M = rows.shape[0] // V

        def take(idx):  # (...,) -> (..., C)
            return rows.index_select(0, idx.reshape(-1)).view(tuple(idx.shape) + (C, ))
    else:
        flat = maps.reshape(V, C, -1).float()
        M = flat.shape[-1]
        rows = None

        def take(idx):  # (...,) -> (..., C); advanced indices around a slice go first
            return flat[idx // M, :, idx % M]

    q = take(query_index)
    pos = (q * take(pos_index)).sum(-1)
    if N * C <= V * M:
        neg = torch.einsum('qc,qnc->qn', q, take(neg_index))
    else:
        if rows is None:
            rows = flat.transpose(1, 2).reshape(V * M, C)
        neg = (q @ rows.t()).gather(1, neg_index)
    return pos, neg


def _channels_last(t: torch.Tensor) -> torch.Tensor:
    """``channels_last_3d`` for 5-D tensors (3D conv weights), ``channels_last`` for 4-D ones
    (the 2D convs of a :class:`~mmanat.models.utils.Planar` network); others unchanged.
    For a 3D network this is ``module.to(memory_format=torch.channels_last_3d)``."""
    if t.dim() == 5:
        return t.to(memory_format=torch.channels_last_3d)
    if t.dim() == 4:
        return t.to(memory_format=torch.channels_last)
    return t


@MODELS.register_module()
class SAM(BaseModel):
    """Self-supervised Anatomical eMbedding (Yan et al., TMI 2022, arXiv:2012.02383).

    Network: ``backbone`` (e.g. :class:`ResNet3D`) -> stage outputs; ``neck`` (FPN over the
    ``fine_levels`` stages) -> fine embeddings at ``fine_stride``; ``coarse_head`` on stage
    ``coarse_level`` -> coarse embeddings at ``coarse_stride``; both L2-normalised.

    Training (``mode='loss'``) takes view pairs: inputs (B, 2, 1, D, H, W) and data_samples
    dict(coords (B, 2, 3, D, H, W) world mm, valid (B, 2, D, H, W)) from
    :class:`SAMDataPreprocessor`. Coordinates are average-pooled to the fine grid
    (``fine_stride`` blocks) and the coarse grid (``coarse_stride`` blocks) - exact for
    affine coordinate maps; a grid voxel is valid when at least ``valid_threshold`` of its
    block is. The samplers pick (query, positive, negatives) triplets from the coordinates;
    the InfoNCE losses are averaged over all queries of the batch.

    2D images (radiographs) are one-slice volumes, D = 1 (:mod:`mmanat.structures.planar`):
    the networks are 2D ones wrapped by :class:`~mmanat.models.utils.Planar`, the strides
    are ``(1, sy, sx)`` (e.g. fine ``(1, 4, 4)``, coarse ``(1, 32, 32)``) and everything
    else (padding, pooling of the coordinate maps, the samplers, the losses) is unchanged.

    Optional ``data_samples['query_mask']`` (B, 2, D, H, W) bool (UAE-M stage 2: the MR
    foreground, see :class:`PackSAMInputs`) is pooled to the fine grid like ``valid`` (a
    fine voxel is in the mask when at least ``valid_threshold`` of its block is) and passed
    to the fine sampler as ``query_mask``: fine queries are pre-selected only inside it. The
    released UAE-M fine loss resizes the MR mask to the fine grid by nearest neighbour
    (alibaba-damo-academy/self-supervised-anatomical-embedding-v2,
    sam/models/frameworks/sam_v2_uniform_cross_volume_mask_dual_head_MRI_CT.py,
    ``single_inter_fine_loss``: ``mri_fine_mask``); the coarse loss uses no mask, nor does
    the coarse sampler here.

    Args:
        backbone, neck, coarse_head: MODELS configs (or modules). ``neck`` may be
            ``type='mmdet.FPN'`` (its first output is used) or mmanat's ``FPN3D``.
        fine_head: optional MODELS config applied to the neck output (default: L2
            normalisation only).
        fine_sampler, coarse_sampler: TASK_UTILS configs (SAMFinePairSampler,
            SAMCoarsePairSampler).
        loss_fine, loss_coarse: MODELS configs (InfoNCELoss, T = 0.5).
        fine_levels: indices (into the backbone outputs) fed to the neck.
        coarse_level: index of the backbone output fed to the coarse head.
        fine_stride, coarse_stride: (z, y, x) strides of the two outputs.
        valid_threshold: fraction of valid input voxels that makes a grid voxel valid.
        channels_last: run the network in the ``channels_last_3d`` memory format (weights
            and activations N, D, H, W, C; 2D conv weights in ``channels_last``): the same
            function, about 30 % less forward time for oneDNN on CPU. :meth:`extract_feat`
            returns contiguous (N, C, D, H, W) maps either way; inside :meth:`loss` they stay
            channels_last (no copy), and the samplers and :func:`gather_similarities` read
            them as (voxel, channel) rows.
        cpu_bf16: in training mode, run the network on CPU under bfloat16 autocast
            (convolutions in bf16; BatchNorm, the L2 normalisation, the samplers and the
            losses stay float32). Inference (eval mode) ignores it: a model trained with it
            embeds in float32 unless ``mmanat.apis.embed(..., cpu_bf16=True)`` asks for bf16.
            About 2x faster convolutions on CPUs with AVX512-BF16/AMX, but it changes the
            numerics (3 significant digits in the convolutions): off by default, opt-in.
            The shipped CPU recipe turns it on (its loss curve over 50 iterations stays
            with the float32 one, tools/benchmarks/compare_loss_curves.py). Caution: with
            torch 2.13 on the CPU, stage-4 maps as small as 2 x 2 x 2 (e.g. 8 x 32 x 32
            inputs) gave non-deterministic, sometimes huge, weight gradients in bf16; the
            recipe's 8 x 6 x 6 maps (32 x 96 x 96 views) repeat exactly.
        pad_at_inference: :func:`mmanat.apis.embed` pads an image with air to a multiple of
            ``coarse_stride`` before the network (True, mmanat's default: every map size is
            exactly input size / stride) or runs the network on the image as it is (False,
            as the released SAM / UAE code does; the maps then equal the reference's up to
            the borders, where padding would change them within the receptive field).
        input_spacing: the isotropic spacing (mm) images are resampled to before the network
            at inference (:func:`mmanat.apis.embed`); ``None`` means the 3D default, 2.0 mm.
            The 2D configs set it (a radiograph's in-plane pixel size).
        data_preprocessor: MODELS config (default SAMDataPreprocessor padding to
            ``coarse_stride``).
        init_cfg: mmengine init config.
    """

    def __init__(self,
                 backbone: Union[dict, nn.Module],
                 neck: Union[dict, nn.Module],
                 coarse_head: Union[dict, nn.Module],
                 fine_head: Optional[Union[dict, nn.Module]] = None,
                 fine_sampler: Union[dict, Any] = dict(type='SAMFinePairSampler'),
                 coarse_sampler: Union[dict, Any] = dict(type='SAMCoarsePairSampler'),
                 loss_fine: Union[dict, nn.Module] = dict(type='InfoNCELoss', temperature=0.5),
                 loss_coarse: Union[dict, nn.Module] = dict(
                     type='InfoNCELoss', temperature=0.5),
                 fine_levels: Sequence[int] = (0, 1, 2),
                 coarse_level: int = 3,
                 fine_stride: Sequence[int] = (2, 2, 2),
                 coarse_stride: Sequence[int] = (4, 16, 16),
                 valid_threshold: float = 0.5,
                 channels_last: bool = False,
                 cpu_bf16: bool = False,
                 pad_at_inference: bool = True,
                 input_spacing: Optional[float] = None,
                 data_preprocessor: Optional[Union[dict, nn.Module]] = None,
                 init_cfg: Optional[dict] = None):
        if data_preprocessor is None:
            data_preprocessor = dict(type='SAMDataPreprocessor',
                                     pad_size_divisor=tuple(coarse_stride))
        if isinstance(data_preprocessor, dict):
            # build in mmanat's scope: mmengine's BaseModel would look it up in the root
            data_preprocessor = MODELS.build(data_preprocessor)
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.backbone = self._build(MODELS, backbone)
        self.neck = self._build(MODELS, neck)
        self.coarse_head = self._build(MODELS, coarse_head)
        self.fine_head = None if fine_head is None else self._build(MODELS, fine_head)
        self.fine_sampler = self._build(TASK_UTILS, fine_sampler)
        self.coarse_sampler = self._build(TASK_UTILS, coarse_sampler)
        self.loss_fine = self._build(MODELS, loss_fine)
        self.loss_coarse = self._build(MODELS, loss_coarse)
        self.fine_levels = tuple(int(i) for i in fine_levels)
        self.coarse_level = int(coarse_level)
        self.fine_stride = tuple(int(s) for s in fine_stride)
        self.coarse_stride = tuple(int(s) for s in coarse_stride)
        if len(self.fine_stride) != 3 or len(self.coarse_stride) != 3 or any(
                c % f for c, f in zip(self.coarse_stride, self.fine_stride)):
            raise InvalidInputError(
                f'SAM: fine_stride={self.fine_stride} and coarse_stride={self.coarse_stride} '
                'must be 3 ints (z, y, x), the coarse one a multiple of the fine one')
        self.valid_threshold = float(valid_threshold)
        self.channels_last = bool(channels_last)
        self.cpu_bf16 = bool(cpu_bf16)
        self.pad_at_inference = bool(pad_at_inference)
        if input_spacing is not None and not float(input_spacing) > 0:
            raise InvalidInputError(
                f'SAM: input_spacing={input_spacing!r} must be a positive number of mm (or None '
                'for the 3D default 2.0 mm)')
        self.input_spacing = None if input_spacing is None else float(input_spacing)
        # set by loss(): keep the maps in the network's layout (see extract_feat)
        self._native_layout = False
        if self.channels_last:
            self._apply(_channels_last)

    @staticmethod
    def _build(registry, cfg):
        return registry.build(cfg) if isinstance(cfg, dict) else cfg

    # ------------------------------------------------------------------ network
    def extract_feat(self, inputs: torch.Tensor) -> Dict[str, torch.Tensor]:
        """(N, 1, D, H, W) -> dict(fine=(N, C, ceil(D/2), ceil(H/2), ceil(W/2)),
        coarse=(N, C', ceil(D/4), ceil(H/16), ceil(W/16))), unit length over channels,
        float32 (for the reference strides)."""
        if inputs.dim() != 5:
            raise InvalidInputError(
                f'SAM.extract_feat expects (N, 1, D, H, W) volumes, got {tuple(inputs.shape)}')
        if self.channels_last:
            inputs = inputs.contiguous(memory_format=torch.channels_last_3d)
        # bf16 is a training speed-up only: in eval mode the caller decides (embed(cpu_bf16=)),
        # and no autocast(enabled=False) here may switch off the caller's autocast
        bf16 = self.cpu_bf16 and self.training and inputs.device.type == 'cpu'
        with (torch.autocast('cpu', dtype=torch.bfloat16) if bf16
              else contextlib.nullcontext()):
            feats = self.backbone(inputs)
            fine = self.neck([feats[i] for i in self.fine_levels])
            if isinstance(fine, (list, tuple)):
                fine = fine[0]
            fine = self.fine_head(fine) if self.fine_head is not None else l2_normalize(fine)
            coarse = self.coarse_head(feats[self.coarse_level])
        fine, coarse = fine.float(), coarse.float()
        if self.channels_last and not self._native_layout:
            fine, coarse = fine.contiguous(), coarse.contiguous()
        return dict(fine=fine, coarse=coarse)

    # ------------------------------------------------------------------ training
    def _pool_grid(self, coords: torch.Tensor, valid: torch.Tensor, stride: Sequence[int],
                   size: Sequence[int], name: str) -> Tuple[torch.Tensor, torch.Tensor]:
        # pool offsets from each view's first voxel: float32 keeps ~1e-5 mm this way
        ref = coords[:, :, :1, :1, :1]
        c = F.avg_pool3d((coords - ref).float(), kernel_size=stride, stride=stride) + ref
        v = F.avg_pool3d(valid[:, None].to(torch.float32), kernel_size=stride,
                         stride=stride)[:, 0] >= self.valid_threshold
        if tuple(c.shape[-3:]) != tuple(size):
            raise InvalidInputError(
                f'SAM: the {name} embedding grid {tuple(size)} does not match the input '
                f'pooled by {name}_stride={tuple(stride)} ({tuple(c.shape[-3:])}); set '
                f'{name}_stride to the stride of the network output')
        return c, v

    def _pool_mask(self, mask: torch.Tensor, stride: Sequence[int]) -> torch.Tensor:
        """(N, D, H, W) bool -> pooled (N, d, h, w) bool: at least ``valid_threshold`` of the
        block inside the mask (the rule of ``valid`` in :meth:`_pool_grid`)."""
        return F.avg_pool3d(mask[:, None].to(torch.float32), kernel_size=stride,
                            stride=stride)[:, 0] >= self.valid_threshold

    def loss(self, inputs: torch.Tensor, data_samples: dict) -> Dict[str, torch.Tensor]:
        """Fine and coarse InfoNCE losses of a batch of view pairs (see the class doc)."""
        if inputs.dim() != 6 or inputs.shape[1] != 2:
            raise InvalidInputError(
                f'SAM.loss expects view pairs (B, 2, 1, D, H, W), got {tuple(inputs.shape)}')
        if not isinstance(data_samples, dict) or 'coords' not in data_samples:
            raise InvalidInputError(
                "SAM.loss needs data_samples=dict(coords=(B, 2, 3, D, H, W), valid=...); "
                'use SAMDataPreprocessor')
        B = inputs.shape[0]
        coords = data_samples['coords']
        valid = data_samples.get('valid')
        if valid is None:
            valid = torch.ones(inputs.shape[:2] + inputs.shape[-3:], dtype=torch.bool,
                               device=inputs.device)
        query_mask = data_samples.get('query_mask')
        if query_mask is not None and tuple(query_mask.shape) != tuple(valid.shape):
            raise InvalidInputError(
                f'SAM.loss: data_samples["query_mask"] must be {tuple(valid.shape)} '
                f'(B, 2, D, H, W) like valid, got {tuple(query_mask.shape)}; use '
                'SAMDataPreprocessor')
        inputs, coords, valid = pad_views(inputs, coords, valid.bool(), self.coarse_stride)
        if query_mask is not None:
            query_mask = pad_mask(query_mask, inputs.shape[-3:])

        # with channels_last the maps stay channels_last_3d here (no copy): the samplers and
        # gather_similarities read them as (voxel, channel) rows
        self._native_layout = True
        try:
            feats = self.extract_feat(inputs.flatten(0, 1))
        finally:
            self._native_layout = False
        fine, coarse = feats['fine'], feats['coarse']
        coords = coords.flatten(0, 1)
        valid = valid.flatten(0, 1)
        fine_xyz, fine_ok = self._pool_grid(coords, valid, self.fine_stride,
                                            fine.shape[-3:], 'fine')
        coarse_xyz, coarse_ok = self._pool_grid(coords, valid, self.coarse_stride,
                                                coarse.shape[-3:], 'coarse')

        def pairs(x):
            return x.reshape((B, 2) + tuple(x.shape[1:]))

        # only when given, so fine samplers without the argument keep working
        fine_kw = {} if query_mask is None else dict(query_mask=pairs(self._pool_mask(
            query_mask.flatten(0, 1), self.fine_stride)))
        with torch.no_grad():
            coarse_up = l2_normalize(F.interpolate(
                coarse.detach().float(), size=fine.shape[-3:], mode='trilinear',
                align_corners=False))
            fs = self.fine_sampler(pairs(fine.detach()), pairs(fine_xyz), pairs(fine_ok),
                                   pairs(coarse_up), **fine_kw)
            cs = self.coarse_sampler(pairs(coarse.detach()), pairs(coarse_xyz),
                                     pairs(coarse_ok))
        with torch.autocast(device_type=inputs.device.type, enabled=False):
            pos, neg = gather_similarities(fine, fs['query_index'], fs['pos_index'],
                                           fs['neg_index'])
            loss_fine = self.loss_fine(pos, neg, fs['neg_mask'])
            pos, neg = gather_similarities(coarse, cs['query_index'], cs['pos_index'],
                                           cs['neg_index'])
            loss_coarse = self.loss_coarse(pos, neg, cs['neg_mask'])
        return dict(loss_fine=loss_fine, loss_coarse=loss_coarse)

    # ------------------------------------------------------------------ inference
    def predict(self, inputs: torch.Tensor,
                data_samples: Optional[List[dict]] = None) -> List[Dict[str, Any]]:
        """Embed volumes (N, 1, D, H, W). Returns one dict per volume: ``fine`` (C, d, h, w),
        ``coarse`` (C', d', h', w'), ``fine_stride``, ``coarse_stride`` and ``meta``; maps
        are cropped to ``ceil(input_shape / stride)`` when the meta gives ``input_shape``
        (volumes padded to a common batch size)."""
        feats = self.extract_feat(inputs)
        out = []
        for i in range(inputs.shape[0]):
            meta = data_samples[i] if isinstance(data_samples, (list, tuple)) else {}
            fine, coarse = feats['fine'][i], feats['coarse'][i]
            shape = meta.get('input_shape') if isinstance(meta, dict) else None
            if shape is not None:
                fine = fine[(slice(None), ) + tuple(
                    slice(0, math.ceil(n / s)) for n, s in zip(shape, self.fine_stride))]
                coarse = coarse[(slice(None), ) + tuple(
                    slice(0, math.ceil(n / s)) for n, s in zip(shape, self.coarse_stride))]
            out.append(dict(fine=fine, coarse=coarse, fine_stride=self.fine_stride,
                            coarse_stride=self.coarse_stride, meta=meta))
        return out

    def forward(self, inputs: torch.Tensor, data_samples: Any = None, mode: str = 'tensor'):
        """``mode='loss'`` -> dict of losses (view pairs); ``'predict'`` -> list of per-volume
        embedding dicts; ``'tensor'`` -> :meth:`extract_feat` of (N, 1, D, H, W) volumes
        (view pairs (B, 2, 1, D, H, W) are flattened to 2B volumes)."""
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode == 'tensor':
            if inputs.dim() == 6:
                inputs = inputs.flatten(0, 1)
            return self.extract_feat(inputs)
        raise InvalidInputError(
            f"SAM.forward: mode={mode!r}; use 'loss', 'predict' or 'tensor'")
