"""Multi-label radiograph classifier: the downstream model of Adam/Eve (linear probe and
fine-tuning; Hosseinzadeh Taher et al., 2023)."""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModel
from mmengine.structures import BaseDataElement

from ...registry import MODELS
from ...utils.checkpoint import load_checkpoint_file, state_dict_of
from ...utils.exceptions import InvalidInputError


@MODELS.register_module()
class RadiographClassifier(BaseModel):
    """Backbone + global average pooling + linear layer, trained with a multi-label
    binary cross-entropy (ChestX-ray14-style labels, one sigmoid per class).

    The backbone attribute is called ``backbone`` as in :class:`Adam`, so Adam (or any
    mmanat/mmengine) checkpoint loads into it without renaming keys: ``pretrained`` takes
    the ``backbone.*`` entries of the checkpoint (the query encoder; the momentum encoder,
    neck and queue are ignored), checks that every backbone weight is present, and verifies
    the file's SHA-256 when it is a shipped checkpoint (see :mod:`mmanat.utils.model_zoo`).

    Args:
        backbone: backbone config (e.g. ``dict(type='mmdet.ResNet', depth=18, ...)``) or module
            returning a tuple of maps; the last map is pooled.
        num_classes: number of labels.
        in_channels: channels of the pooled map (512 for ResNet-18, 2048 for ResNet-50).
        frozen_backbone: linear probe: the backbone is kept in eval mode (BatchNorm
            statistics frozen) and gets no gradients; only the head trains.
        feat_norm: BatchNorm1d without affine parameters on the pooled features (standard for
            linear probing: features of a self-supervised model have arbitrary scales).
        dropout: dropout before the linear layer.
        pretrained: checkpoint whose ``backbone.*`` weights initialise the backbone.
        data_preprocessor: default ``BaseDataPreprocessor``.

    ``inputs``: ``(N, C, H, W)`` or ``(N, 1, C, H, W)`` (one view from
    :class:`~mmanat.datasets.transforms.PackTwoViewInputs`); ``data_samples`` carry
    ``gt_label`` (multi-hot float). ``mode='predict'`` returns samples with ``pred_score``
    (sigmoid probabilities) and ``gt_label``.
    """

    def __init__(self, backbone: Union[dict, nn.Module], num_classes: int, in_channels: int,
                 frozen_backbone: bool = False, feat_norm: bool = True, dropout: float = 0.0,
                 pretrained: Optional[str] = None,
                 data_preprocessor: Optional[Union[dict, nn.Module]] = None,
                 init_cfg: Optional[dict] = None):
        if data_preprocessor is None:
            data_preprocessor = dict(type='BaseDataPreprocessor')
        if isinstance(data_preprocessor, dict):
            data_preprocessor = MODELS.build(data_preprocessor)
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if int(num_classes) < 1 or int(in_channels) < 1:
            raise InvalidInputError(f'RadiographClassifier: num_classes and in_channels must '
                                    f'be >= 1, got {num_classes}, {in_channels}.')
        self.backbone = MODELS.build(backbone) if isinstance(backbone, dict) else backbone
        self.num_classes = int(num_classes)
        self.frozen_backbone = bool(frozen_backbone)
        self.feat_norm = nn.BatchNorm1d(int(in_channels), affine=False) if feat_norm \
            else nn.Identity()
        self.dropout = nn.Dropout(float(dropout)) if dropout > 0 else nn.Identity()
        self.head = nn.Linear(int(in_channels), self.num_classes)
        self.pretrained = pretrained
        if self.frozen_backbone:
            for p in self.backbone.parameters():
                p.requires_grad_(False)

    def init_weights(self) -> None:
        """Default initialisation, then the ``pretrained`` backbone weights (if any)."""
        super().init_weights()
        nn.init.normal_(self.head.weight, std=0.01)
        nn.init.zeros_(self.head.bias)
        if self.pretrained:
            self.load_pretrained_backbone(self.pretrained)

    def load_pretrained_backbone(self, path: str) -> int:
        """Copy the ``backbone.*`` tensors of checkpoint ``path`` into the backbone.

        Returns:
            The number of tensors loaded.

        Raises:
            InvalidInputError: unreadable or corrupted file, or backbone weights missing or of
                another shape (a checkpoint of a different architecture).
        """
        ckpt = load_checkpoint_file(path)
        state = state_dict_of(ckpt, path)
        own = self.backbone.state_dict()
        sub = {k[len('backbone.'):]: v for k, v in state.items() if k.startswith('backbone.')}
        missing = sorted(set(own) - set(sub))
        bad = sorted(k for k in own if k in sub and tuple(sub[k].shape) != tuple(own[k].shape))
        if missing or bad:
            raise InvalidInputError(
                f'{path}: does not fit the classifier backbone: {len(missing)} missing '
                f'(e.g. {missing[:3]}), {len(bad)} of another shape (e.g. {bad[:3]}); was it '
                'trained with the same backbone config (depth, in_channels)?')
        self.backbone.load_state_dict({k: sub[k].to(own[k].dtype) for k in own}, strict=True)
        return len(own)

    def train(self, mode: bool = True) -> 'RadiographClassifier':
        """Like ``nn.Module.train``, but a frozen backbone stays in eval mode."""
        super().train(mode)
        if self.frozen_backbone:
            self.backbone.eval()
        return self

    @staticmethod
    def _as_images(inputs) -> torch.Tensor:
        if isinstance(inputs, (list, tuple)):
            inputs = torch.stack(list(inputs))
        if inputs.dim() == 5:
            if inputs.shape[1] != 1:
                raise InvalidInputError(f'RadiographClassifier takes one view per image, got '
                                        f'inputs of shape {tuple(inputs.shape)}.')
            inputs = inputs[:, 0]
        if inputs.dim() != 4:
            raise InvalidInputError(f'RadiographClassifier: inputs must be (N, C, H, W), got '
                                    f'{tuple(inputs.shape)}.')
        return inputs

    def extract_feat(self, inputs: torch.Tensor) -> torch.Tensor:
        """Pooled backbone features ``(N, in_channels)``."""
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.frozen_backbone):
            out = self.backbone(inputs)
        x = out[-1] if isinstance(out, (tuple, list)) else out
        return x.mean(dim=(2, 3))

    def _logits(self, inputs) -> torch.Tensor:
        x = self.extract_feat(self._as_images(inputs))
        return self.head(self.dropout(self.feat_norm(x)))

    @staticmethod
    def _labels(data_samples: List[Any], device) -> torch.Tensor:
        try:
            return torch.stack([torch.as_tensor(s.gt_label, dtype=torch.float32)
                                for s in data_samples]).to(device)
        except (AttributeError, TypeError):
            raise InvalidInputError('RadiographClassifier: every data sample needs a gt_label '
                                    '(the training list file must have labels).') from None

    def forward(self, inputs, data_samples: Optional[List[Any]] = None,
                mode: str = 'tensor') -> Union[torch.Tensor, Dict[str, torch.Tensor], list]:
        """``mode='loss'``: ``{'loss_cls'}``; ``'predict'``: samples with ``pred_score``;
        ``'tensor'``: logits ``(N, num_classes)``."""
        logits = self._logits(inputs)
        if mode == 'tensor':
            return logits
        if mode == 'loss':
            target = self._labels(data_samples, logits.device)
            if target.shape != logits.shape:
                raise InvalidInputError(f'RadiographClassifier: gt_label has {target.shape[1]} '
                                        f'classes, the head {logits.shape[1]} (num_classes).')
            return dict(loss_cls=F.binary_cross_entropy_with_logits(logits, target))
        if mode == 'predict':
            scores = torch.sigmoid(logits).detach()
            out = []
            for i in range(len(scores)):
                s = data_samples[i] if data_samples is not None else BaseDataElement()
                s.pred_score = scores[i].cpu()
                out.append(s)
            return out
        raise InvalidInputError(f'unknown mode {mode!r}; use loss, predict or tensor.')
