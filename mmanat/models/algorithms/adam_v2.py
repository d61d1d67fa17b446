"""Adam v2 (Hosseinzadeh Taher, Gotway and Liang, "Representing part-whole hierarchies in
foundation models by learning localizability, composability, and decomposability from anatomy
via self-supervision", CVPR 2024): a DINO-style student and EMA teacher trained on anatomy
anchors with three losses, localizability, composability and decomposability."""
from __future__ import annotations

import copy
from typing import Any, Dict, List, Optional, Tuple, Union

import torch
from mmengine.model import BaseModel
from mmengine.structures import BaseDataElement
from torch import nn

from mmanat.registry import MODELS
from mmanat.utils.exceptions import InvalidInputError

from ..utils.ema_teacher import copy_student_to_teacher, cosine_momentum, ema_update


def pooled(out) -> torch.Tensor:
    """The last map of a backbone output, globally average-pooled to ``(N, C)`` (vectors are
    returned flattened)."""
    x = out[-1] if isinstance(out, (tuple, list)) else out
    return x.mean(dim=(2, 3)) if x.dim() == 4 else x.flatten(1)


@MODELS.register_module()
class AdamV2(BaseModel):
    """Student / teacher self-distillation on anatomy anchors and their parts (Adam v2).

    Networks: the student (``student_backbone`` + ``student_head``, a :class:`DINOHead`,
    plus ``compose_head`` and ``decompose_head``) is trained; the teacher (``backbone`` +
    ``teacher_head``) is an EMA of the student (``teacher = m teacher + (1 - m) student``
    before each teacher pass, ``m`` from 0.996 to 1 on a cosine schedule over
    ``momentum_iters`` iterations, counted by the buffer ``ema_step``; DINO, Caron et al.,
    ICCV 2021, Sec. 3.1). The teacher's backbone is called ``backbone`` because it is the
    network Eve and the downstream models use (DINO evaluates the teacher): the radiograph
    classifier's ``pretrained`` and :meth:`extract_feat` take it without renaming.

    Losses (Adam v2, Sec. 3; weights in the loss modules, 1 / 1 / 1):

    * localizability (:class:`LocalizabilityLoss`): teacher head on the anchor against the
      student head on one global view and the local crops of the anchor;
    * composability (:class:`ComposabilityLoss`): compose head on the concatenated student
      features of the anchor's 4 quadrants against the teacher feature of the anchor;
    * decomposability (:class:`DecomposabilityLoss`): decompose head on the student feature of
      the anchor, split in 4, against the teacher features of the 4 quadrants.

    Features are the globally pooled last backbone maps. The localizability centre is updated
    after each training step.

    ``inputs`` (from :class:`~mmanat.datasets.transforms.PackAdamV2Inputs`): a dict with
    ``global_views`` ``(N, 6, C, G, G)`` = [anchor, global view, quadrants 0-3 (row-major)]
    and ``local_views`` ``(N, L, C, g, g)`` (or lists of per-sample tensors).

    Args:
        backbone: backbone config (student; the teacher is a copy).
        head: :class:`DINOHead` config (student; the teacher head is a copy).
        compose_head, decompose_head: :class:`ComposeHead` / :class:`DecomposeHead` configs.
        loss_loc, loss_comp, loss_dec: the three loss configs.
        base_momentum, final_momentum: EMA momentum schedule ends (0.996 -> 1).
        momentum_iters: schedule length (the stage hook sets it to each stage's length).
        data_preprocessor: default ``BaseDataPreprocessor``.
    """

    def __init__(self, backbone: Union[dict, nn.Module], head: Union[dict, nn.Module],
                 compose_head: Union[dict, nn.Module], decompose_head: Union[dict, nn.Module],
                 loss_loc: Union[dict, nn.Module], loss_comp: Union[dict, nn.Module] = dict(
                     type='ComposabilityLoss'),
                 loss_dec: Union[dict, nn.Module] = dict(type='DecomposabilityLoss'),
                 base_momentum: float = 0.996, final_momentum: float = 1.0,
                 momentum_iters: int = 1000,
                 data_preprocessor: Optional[Union[dict, nn.Module]] = None,
                 init_cfg: Optional[dict] = None):
        if data_preprocessor is None:
            data_preprocessor = dict(type='BaseDataPreprocessor')
        if isinstance(data_preprocessor, dict):
            data_preprocessor = MODELS.build(data_preprocessor)
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if not (0.0 <= base_momentum <= final_momentum <= 1.0) or int(momentum_iters) < 1:
            raise InvalidInputError(f'AdamV2: 0 <= base_momentum <= final_momentum <= 1 and '
                                    f'momentum_iters >= 1 needed, got {base_momentum}, '
                                    f'{final_momentum}, {momentum_iters}.')
        build = lambda cfg: MODELS.build(cfg) if isinstance(cfg, dict) else cfg  # noqa: E731
        self.student_backbone = build(backbone)
        self.student_head = build(head)
        self.compose_head = build(compose_head)
        self.decompose_head = build(decompose_head)
        self.backbone = copy.deepcopy(self.student_backbone)  # the teacher
        self.teacher_head = copy.deepcopy(self.student_head)
        for p in list(self.backbone.parameters()) + list(self.teacher_head.parameters()):
            p.requires_grad_(False)
        self.loss_loc = build(loss_loc)
        self.loss_comp = build(loss_comp)
        self.loss_dec = build(loss_dec)
        self.base_momentum = float(base_momentum)
        self.final_momentum = float(final_momentum)
        self.momentum_iters = int(momentum_iters)
        self.register_buffer('ema_step', torch.zeros(1, dtype=torch.long))

    # ------------------------------------------------------------------ teacher
    def init_weights(self) -> None:
        """Initialise the student, then copy it into the teacher."""
        super().init_weights()
        copy_student_to_teacher([self.backbone, self.teacher_head],
                                [self.student_backbone, self.student_head])

    @property
    def momentum(self) -> float:
        """The EMA momentum of the next update."""
        return cosine_momentum(int(self.ema_step.item()), self.momentum_iters,
                               self.base_momentum, self.final_momentum)

    @torch.no_grad()
    def momentum_update(self) -> float:
        """One EMA step of the teacher (backbone and head); returns the momentum used."""
        m = self.momentum
        ema_update([self.backbone, self.teacher_head],
                   [self.student_backbone, self.student_head], m)
        self.ema_step += 1
        return m

    def extract_feat(self, inputs: torch.Tensor, student: bool = False) -> torch.Tensor:
        """Eve: pooled last teacher backbone map, ``(N, C, H, W) -> (N, C_feat)``;
        ``student=True`` uses the student backbone."""
        net = self.student_backbone if student else self.backbone
        return pooled(net(inputs))

    # ------------------------------------------------------------------ training
    @staticmethod
    def _views(inputs) -> Tuple[torch.Tensor, torch.Tensor]:
        if not isinstance(inputs, dict) or 'global_views' not in inputs or \
                'local_views' not in inputs:
            raise InvalidInputError('AdamV2: inputs must be a dict with global_views and '
                                    'local_views (use PackAdamV2Inputs in the pipeline).')
        g, loc = inputs['global_views'], inputs['local_views']
        g = torch.stack(list(g)) if isinstance(g, (list, tuple)) else g
        loc = torch.stack(list(loc)) if isinstance(loc, (list, tuple)) else loc
        if g.dim() != 5 or g.shape[1] != 6 or loc.dim() != 5 or loc.shape[0] != g.shape[0]:
            raise InvalidInputError(f'AdamV2: global_views (N, 6, C, G, G) and local_views '
                                    f'(N, L, C, g, g) needed, got {tuple(g.shape)} and '
                                    f'{tuple(loc.shape)}.')
        return g, loc

    def loss(self, inputs, data_samples=None) -> Dict[str, torch.Tensor]:
        """The three Adam v2 losses (``loss_loc``, ``loss_comp``, ``loss_dec``) and the EMA
        momentum used (``momentum``, logged)."""
        g, loc = self._views(inputs)
        n, n_loc = g.shape[0], loc.shape[1]
        # student: anchor, global view and quadrants in one pass; the local crops in another
        s_feat = pooled(self.student_backbone(g.flatten(0, 1))).view(n, 6, -1)
        s_loc = pooled(self.student_backbone(loc.flatten(0, 1))).view(n, n_loc, -1)
        with torch.no_grad():
            m = self.momentum_update() if self.training else self.momentum
            keep = torch.tensor([0, 2, 3, 4, 5], device=g.device)
            t_feat = pooled(self.backbone(g[:, keep].flatten(0, 1))).view(n, 5, -1)
            t_logits = self.teacher_head(t_feat[:, 0])
        s_views = torch.cat([s_feat[:, 1:2], s_loc], dim=1)  # (N, 1 + L, C)
        s_logits = self.student_head(s_views.flatten(0, 1)).view(n, 1 + n_loc, -1)
        loss_loc = self.loss_loc(s_logits.transpose(0, 1), t_logits)
        loss_comp = self.loss_comp(self.compose_head(s_feat[:, 2:6]), t_feat[:, 0])
        loss_dec = self.loss_dec(self.decompose_head(s_feat[:, 0]), t_feat[:, 1:5])
        if self.training:
            self.loss_loc.update_center(t_logits)
        return dict(loss_loc=loss_loc, loss_comp=loss_comp, loss_dec=loss_dec,
                    momentum=torch.tensor(m))

    # ------------------------------------------------------------------ modes
    @staticmethod
    def _images(inputs) -> torch.Tensor:
        if isinstance(inputs, dict):
            inputs = inputs.get('global_views')
        x = torch.stack(list(inputs)) if isinstance(inputs, (list, tuple)) else inputs
        if not isinstance(x, torch.Tensor) or x.dim() not in (4, 5):
            raise InvalidInputError('AdamV2: images must be (N, C, H, W) or (N, V, C, H, W).')
        return x[:, 0] if x.dim() == 5 else x

    def predict(self, inputs, data_samples=None) -> List[BaseDataElement]:
        """Eve features (teacher) of the images (view 0, the anchor) in
        ``data_samples[i].embedding``."""
        feats = self.extract_feat(self._images(inputs))
        samples = list(data_samples) if data_samples is not None else \
            [BaseDataElement() for _ in range(feats.shape[0])]
        for s, f in zip(samples, feats):
            s.embedding = f
        return samples

    def forward(self, inputs, data_samples: Any = None, mode: str = 'tensor'):
        """``mode``: ``'loss'`` (training), ``'predict'`` or ``'tensor'`` (Eve features of
        ``(N, C, H, W)`` images, or of view 0 of ``(N, V, C, H, W)`` / ``global_views``)."""
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode == 'tensor':
            return self.extract_feat(self._images(inputs))
        raise InvalidInputError(f"AdamV2: unknown mode {mode!r}; use 'loss', 'predict' or "
                                "'tensor'.")
