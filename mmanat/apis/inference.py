"""Building a model for inference and turning an image into :class:`EmbeddingMaps`.

Pipeline (SPEC 1.5 step 1-2)::

    image (any orientation/spacing) --reorient LPS--> --resample 2 mm--> --normalise-->
    --pad with air to a multiple of the coarse stride (4, 16, 16) at the END of each axis-->
    network --> fine (stride 2), coarse (stride (4, 16, 16)) [, semantic (stride 2)] maps,
    cropped to ceil(unpadded size / stride) and tagged with their exact grid geometry.

Padding only appends voxels after the last one, so the origin, spacing and direction of the
padded volume are those of the unpadded one (geometry never shifts).

Tiled inference (``tile_size``) runs the network on overlapping windows whose corners lie on
multiples of the coarse stride (so every window's maps line up voxel-for-voxel with the whole
volume's grids) and blends them with weights that ramp (linearly or with a cosine) across each
overlap; the blended vectors are re-normalised to unit length.
"""
from __future__ import annotations

import hashlib
import math
import os
import os.path as osp
import warnings
from typing import Any, Dict, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from .model_zoo import load_zoo, sha256_file
from ..structures.embedding_map import EmbeddingMaps, GridGeometry
from ..structures.image import MedicalImage
from ..utils.exceptions import InvalidInputError

DEFAULT_SPACING = 2.0
DEFAULT_PAD_MULTIPLE = (4, 16, 16)
CT_AIR_HU = -1024.0
PREPROCESSED_KEY = 'mmanat_preprocessed'


# ------------------------------------------------------------------------------ model
def _config_and_name(config, checkpoint_meta: Optional[dict], checkpoint: Optional[str]):
    from mmengine.config import Config
    if config is None:
        text = (checkpoint_meta or {}).get('cfg')
        if not text:
            raise InvalidInputError(
                f'no config given and the checkpoint {checkpoint} carries none (meta["cfg"]); '
                'pass the config the checkpoint was trained with, e.g. '
                'configs/sam/sam_r18_fpn_ct.py.')
        cfg = Config.fromstring(text, '.py') if isinstance(text, str) else Config(text)
        # a shipped checkpoint: the config named in its model zoo entry; otherwise
        # tools/train.py's layout, work_dirs/<config name>/iter_*.pth
        entry = load_zoo(osp.dirname(os.fspath(checkpoint)) or '.').get(
            osp.basename(os.fspath(checkpoint))) if checkpoint else None
        if entry and entry.get('config'):
            return cfg, osp.splitext(osp.basename(str(entry['config'])))[0]
        name = osp.basename(osp.dirname(osp.abspath(checkpoint))) if checkpoint else ''
        return cfg, name or str(checkpoint_meta.get('experiment_name') or 'checkpoint_config')
    if isinstance(config, Config):
        name = osp.splitext(osp.basename(config.filename))[0] if config.filename else 'config'
        return config, name
    if isinstance(config, dict):
        return Config(config), 'config'
    path = os.fspath(config)
    if not osp.isfile(path):
        raise InvalidInputError(
            f'{path}: config file not found (working directory {os.getcwd()}); pass a config '
            'such as configs/sam/sam_r18_fpn_ct.py.')
    return Config.fromfile(path), osp.splitext(osp.basename(path))[0]


def state_dict_sha256(model: torch.nn.Module) -> str:
    """SHA-256 over the names, shapes and bytes of every tensor in ``model.state_dict()``."""
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(str(t.dtype).encode())
        h.update(t.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes()
                 if t.numel() else b'')
    return h.hexdigest()


def model_identity(model: torch.nn.Module) -> Dict[str, Any]:
    """The identity of ``model`` recorded in embedding maps and caches.

    :func:`init_model` sets it (config name, checkpoint file name and its SHA-256). For any
    other module it is computed once from the weights (``sha256`` of the state dict) and kept
    on the module as ``model.mmanat_identity``.
    """
    ident = getattr(model, 'mmanat_identity', None)
    if ident is None:
        ident = dict(config=type(model).__name__, checkpoint=None,
                     sha256=state_dict_sha256(model), source='weights')
        try:
            model.mmanat_identity = ident
        except AttributeError:  # pragma: no cover - exotic modules
            pass
    return dict(ident)


def _load_checkpoint_file(checkpoint: str) -> dict:
    from ..utils.checkpoint import allow_mmengine_checkpoint_globals
    path = os.fspath(checkpoint)
    if not osp.isfile(path):
        raise InvalidInputError(
            f'{path}: checkpoint not found (working directory {os.getcwd()}); pass the .pth '
            'file written by tools/train.py (work_dirs/<config>/iter_*.pth).')
    # a shipped checkpoint (listed in the model_zoo.json beside it) must match its SHA-256
    from .model_zoo import verify_checkpoint
    verify_checkpoint(path)
    allow_mmengine_checkpoint_globals()
    try:
        ckpt = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unpickling failure is a bad input file
        raise InvalidInputError(
            f'{path}: cannot load the checkpoint ({type(err).__name__}: '
            f'{str(err).strip().splitlines()[0][:200] if str(err).strip() else ""}); it is '
            'truncated, not a torch checkpoint, or holds objects outside the allow-list.'
        ) from None
    if not isinstance(ckpt, dict):
        raise InvalidInputError(f'{path}: not a checkpoint (a {type(ckpt).__name__}, expected '
                                'a dict with a state_dict).')
    return ckpt


def _state_dict_of(ckpt: dict, path: str) -> Dict[str, torch.Tensor]:
    for key in ('state_dict', 'model', 'model_state_dict'):
        if isinstance(ckpt.get(key), dict):
            state = ckpt[key]
            break
    else:
        state = ckpt
    state = {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}
    if not state:
        raise InvalidInputError(f'{path}: the checkpoint holds no weights (no state_dict).')
    if all(k.startswith('module.') for k in state):  # saved from a DDP-wrapped model
        state = {k[len('module.'):]: v for k, v in state.items()}
    return state


def _fit_state_dict(model: torch.nn.Module, state: Dict[str, torch.Tensor], path: str,
                    config_name: str) -> None:
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    mismatched = sorted(k for k in set(own) & set(state)
                        if tuple(own[k].shape) != tuple(state[k].shape))
    if missing or unexpected or mismatched:

        def listing(keys, n=8):
            more = f' ... (+{len(keys) - n} more)' if len(keys) > n else ''
            return ', '.join(keys[:n]) + more

        parts = []
        if missing:
            parts.append(f'{len(missing)} missing key(s): {listing(missing)}')
        if unexpected:
            parts.append(f'{len(unexpected)} unexpected key(s): {listing(unexpected)}')
        if mismatched:
            shapes = [f'{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}'
                      for k in mismatched]
            parts.append(f'{len(mismatched)} shape mismatch(es) (checkpoint vs config): '
                         f'{listing(shapes, 4)}')
        raise InvalidInputError(
            f'{path}: the checkpoint does not fit the config {config_name!r}: '
            + '; '.join(parts) + '. Pass the config the checkpoint was trained with.')
    model.load_state_dict(state, strict=True)


def default_device() -> torch.device:
    """``cuda`` when a GPU is visible, else ``cpu``."""
    return torch.device('cuda' if torch.cuda.is_available() else 'cpu')


def init_model(config=None, checkpoint: Optional[str] = None,
               device: Union[None, str, torch.device] = None,
               cfg_options: Optional[dict] = None) -> torch.nn.Module:
    """Build a model from a config and load a checkpoint, ready for :func:`embed`.

    Args:
        config: config file path, ``mmengine.Config`` or dict with a ``model`` entry. ``None``
            uses the config stored in the checkpoint (``meta['cfg']``, written by
            tools/train.py).
        checkpoint: ``.pth`` file (an mmengine checkpoint or a plain state dict). ``None``
            keeps the random initialisation (for tests and speed measurements).
        device: ``'cpu'``, ``'cuda'``, ``'cuda:1'``...; ``None``: GPU when present, else CPU.
        cfg_options: entries merged into the config (``Config.merge_from_dict``).

    Returns:
        The model in eval mode on ``device``, with ``model.cfg`` and ``model.mmanat_identity``
        (config name, checkpoint file name, SHA-256 of the checkpoint file, or of the weights
        for a random initialisation).

    Raises:
        InvalidInputError: missing config/checkpoint, unreadable checkpoint, or a checkpoint
            that does not fit the config (naming the missing / unexpected / mismatched keys).
    """
    from mmengine.registry import init_default_scope

    from ..registry import MODELS
    if config is None and checkpoint is None:
        raise InvalidInputError('init_model needs a config (and normally a checkpoint), e.g. '
                                "init_model('configs/sam/sam_r18_fpn_ct.py', 'iter_20000.pth').")
    ckpt = _load_checkpoint_file(checkpoint) if checkpoint is not None else None
    meta = ckpt.get('meta') if isinstance(ckpt, dict) and isinstance(ckpt.get('meta'),
                                                                       dict) else {}
    cfg, config_name = _config_and_name(config, meta, checkpoint)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if 'model' not in cfg:
        raise InvalidInputError(f'config {config_name!r} has no "model" entry.')
    init_default_scope(cfg.get('default_scope', 'mmanat'))
    model_cfg = cfg.model.copy() if hasattr(cfg.model, 'copy') else dict(cfg.model)
    model = MODELS.build(model_cfg)
    if ckpt is not None:
        path = os.fspath(checkpoint)
        _fit_state_dict(model, _state_dict_of(ckpt, path), path, config_name)
        identity = dict(config=config_name, checkpoint=osp.basename(path),
                        sha256=sha256_file(path), source='checkpoint')
    else:
        identity = dict(config=config_name, checkpoint=None, sha256=state_dict_sha256(model),
                        source='random-init')
    model.cfg = cfg
    model.mmanat_identity = identity
    device = default_device() if device is None else torch.device(device)
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise InvalidInputError(f'device {device} requested but CUDA is not available; use '
                                '--device cpu.')
    return model.to(device).eval()


def _model_device(model: torch.nn.Module) -> torch.device:
    for t in model.parameters():
        return t.device
    for t in model.buffers():
        return t.device
    return torch.device(getattr(model, 'device', 'cpu'))


# ------------------------------------------------------------------------------ preprocessing
def _as_image(image) -> MedicalImage:
    if isinstance(image, MedicalImage):
        return image
    if isinstance(image, (str, os.PathLike)):
        from ..fileio import read_volume
        return read_volume(image)
    raise InvalidInputError(f'expected a MedicalImage or an image path, got '
                            f'{type(image).__name__}.')


def _air_value(normalised: np.ndarray, modality: str) -> float:
    """Normalised intensity of air: the CT rule applied to -1024 HU; for MR (no absolute
    scale) the darkest normalised value."""
    if modality == 'CT':
        from ..datasets.transforms.intensity import normalize_intensity
        return float(normalize_intensity(np.array([CT_AIR_HU], np.float32), 'CT')[0])
    return float(normalised.min()) if normalised.size else 0.0


def preprocess_image(image, spacing: float = DEFAULT_SPACING,
                     pad_multiple: Sequence[int] = DEFAULT_PAD_MULTIPLE,
                     orientation: str = 'LPS', modality: Optional[str] = None
                     ) -> MedicalImage:
    """Prepare an image for the network (SPEC 1.5 step 1).

    Reorient to ``orientation`` (voxel axes along L, P, S; no resampling), resample to
    ``spacing`` mm (linear), normalise intensities by modality (CT: HU window; MR:
    percentiles), and pad at the end of each axis with the normalised value of air to a
    multiple of ``pad_multiple`` (z, y, x) - the network's total stride - so that every map
    voxel is a whole block of input voxels. Padding appends voxels after the last one: origin,
    spacing and direction are unchanged.

    Args:
        image: :class:`MedicalImage` (3D) or a path to a volume.
        spacing: isotropic voxel size of the network input in mm.
        pad_multiple: (z, y, x) multiple to pad to.
        orientation: voxel-axis orientation code for :func:`reorient`.
        modality: ``'CT'`` / ``'MR'``; default: the image's own modality.

    Returns:
        float32 :class:`MedicalImage` (padded). ``meta`` holds ``unpadded_shape`` (z, y, x),
        ``pad_value``, ``source_grid`` (dict of the original geometry), ``source_path`` and
        ``input_spacing``.
    """
    from ..datasets.transforms.intensity import normalize_intensity
    from ..fileio import guess_modality
    from ..structures.resample import reorient, resample_to_spacing
    image = _as_image(image)
    if image.ndim != 3:
        raise InvalidInputError(
            f'{image.path or "<in-memory image>"}: SAM embeds 3D volumes; got a '
            f'{image.ndim}D image of shape {image.shape}.')
    source_grid = GridGeometry.from_image(image)
    mod = str(modality or image.modality or guess_modality(image.array)).upper()
    if mod not in ('CT', 'MR'):
        raise InvalidInputError(
            f'{image.path or "<in-memory image>"}: modality {mod!r} cannot be normalised for '
            "SAM; pass modality='CT' or 'MR' (e.g. read_volume(path, modality='CT')).")
    img = reorient(image, orientation)
    img = resample_to_spacing(img, spacing, interpolation='linear')
    arr = normalize_intensity(img.array, mod).astype(np.float32, copy=False)
    pad_value = _air_value(arr, mod)
    unpadded = tuple(int(v) for v in arr.shape)
    mult = tuple(int(v) for v in pad_multiple)
    if len(mult) != 3 or min(mult) < 1:
        raise InvalidInputError(f'pad_multiple must be 3 positive ints (z, y, x), got '
                                f'{pad_multiple!r}.')
    pads = [(0, (-n) % m) for n, m in zip(unpadded, mult)]
    if any(p for _, p in pads):
        arr = np.pad(arr, pads, mode='constant', constant_values=pad_value)
    meta = dict(img.meta)
    meta.update({PREPROCESSED_KEY: True, 'unpadded_shape': unpadded, 'pad_value': pad_value,
                 'source_grid': source_grid.to_dict(), 'source_path': image.path,
                 'input_spacing': float(spacing), 'orientation': orientation,
                 'modality': mod})
    return img.with_array(np.ascontiguousarray(arr), modality=mod, meta=meta)


# ------------------------------------------------------------------------------ embedding
def _forward(model, x: torch.Tensor, amp: bool) -> Dict[str, torch.Tensor]:
    with torch.no_grad():
        if amp:
            with torch.autocast(device_type='cuda', dtype=torch.float16):
                out = model.extract_feat(x)
        else:
            out = model.extract_feat(x)
    if not isinstance(out, dict) or 'fine' not in out or 'coarse' not in out:
        raise InvalidInputError(
            f'{type(model).__name__}.extract_feat must return dict(fine=..., coarse=...[, '
            f'semantic=...]), got {type(out).__name__}'
            + (f' with keys {sorted(out)}' if isinstance(out, dict) else '') + '.')
    return {k: v.float() for k, v in out.items() if k in ('fine', 'coarse', 'semantic')}


def _strides_from(shape_in: Sequence[int], outputs: Dict[str, torch.Tensor]
                  ) -> Dict[str, Tuple[int, int, int]]:
    strides = {}
    for k, v in outputs.items():
        out_shape = tuple(v.shape[-3:])
        s = []
        for n, m in zip(shape_in, out_shape):
            if m < 1 or n % m:
                raise InvalidInputError(
                    f'the network maps an input of size {tuple(shape_in)} to a {k} map of '
                    f'size {out_shape}, not an integer stride; the input must be padded to a '
                    'multiple of the coarse stride (preprocess_image pad_multiple).')
            s.append(n // m)
        strides[k] = tuple(s)
    return strides


def _renormalise(t: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.normalize(t, dim=0, eps=1e-12)


def _ramp(n: int, left: int, right: int, kind: str) -> torch.Tensor:
    """Per-axis blending weight of a window of ``n`` voxels whose first ``left`` and last
    ``right`` voxels overlap a neighbouring window: across an overlap it rises from ~0 at the
    window edge (where zero padding corrupts the features most) to 1, linearly or as a cosine;
    two neighbours' weights sum to 1 in an overlap of equal length. (Giving the outer part of
    each overlap weight 0 was measured worse for the coarse map.)"""
    w = torch.ones(n, dtype=torch.float64)

    def prof(m):
        t = (torch.arange(m, dtype=torch.float64) + 0.5) / m
        return t if kind == 'linear' else torch.sin(0.5 * math.pi * t) ** 2

    if left > 0:
        w[:left] *= prof(left)
    if right > 0:
        w[n - right:] *= prof(right).flip(0)
    return w


def _tile_starts(n: int, t: int, step: int):
    if t >= n:
        return [0]
    starts = list(range(0, n - t, step))
    if starts[-1] != n - t:
        starts.append(n - t)
    return starts


def _round_up(v: int, m: int) -> int:
    return int(math.ceil(v / m) * m)


def _triple_int(value, what: str, minimum: int):
    a = np.asarray(value).reshape(-1)
    if a.size == 1:
        a = np.repeat(a, 3)
    if a.size != 3 or not np.all(np.equal(np.mod(a, 1), 0)) or np.any(a < minimum):
        raise InvalidInputError(f'{what} must be one or three ints >= {minimum} (z, y, x), '
                                f'got {value!r}.')
    return [int(v) for v in a]


def embed(model: torch.nn.Module, image, tile_size: Optional[Sequence[int]] = None,
          overlap: Optional[Sequence[int]] = None, amp: Optional[bool] = None,
          spacing: float = DEFAULT_SPACING, blend: str = 'cosine',
          pad_multiple: Sequence[int] = DEFAULT_PAD_MULTIPLE, progress: bool = False
          ) -> EmbeddingMaps:
    """Embed one volume: fine, coarse (and semantic, when the model has it) maps with their
    grid geometry (SPEC 1.5 step 2).

    Args:
        model: a model with ``extract_feat((N, 1, D, H, W)) -> dict(fine, coarse[,
            semantic])`` (e.g. from :func:`init_model`).
        image: :class:`MedicalImage`, a volume path, or the output of
            :func:`preprocess_image` (then used as is).
        tile_size: ``None`` runs the whole volume at once. Otherwise (z, y, x) window size in
            network-input voxels (one int: cubic), rounded up to a multiple of
            ``pad_multiple``; windows overlap by ``overlap`` voxels (default: a quarter of the
            window, rounded up to ``pad_multiple``) and are blended.
        overlap: (z, y, x) overlap of neighbouring windows in input voxels.
        amp: mixed precision (fp16 autocast); ``None``: on when the model is on a GPU.
            Ignored on CPU.
        spacing: network-input voxel size (mm) used by :func:`preprocess_image`.
        blend: ``'cosine'`` or ``'linear'`` weight ramps across overlaps.
        pad_multiple: the network's total stride (z, y, x).
        progress: show a progress bar over windows.

    Returns:
        :class:`EmbeddingMaps` on the model's device, float32, unit length over channels,
        cropped to ``ceil(unpadded input size / stride)`` per level.

    Tiling tolerance (cosine similarity between tiled and whole-volume maps, measured with
    random-init SAM; see README): 64 x 128 x 128 windows on a chest CT: fine mean 0.9998
    (min 0.9965), coarse mean 0.996 (min 0.97); 32 x 64 x 64 windows (SAM tiny, worst case):
    fine 0.997, coarse 0.94. The coarse map sees the whole window: use large windows.
    """
    device = _model_device(model)
    if amp is None:
        amp = device.type == 'cuda'
    if amp and device.type != 'cuda':
        warnings.warn('amp=True ignored: mixed precision is used on GPU only.')
        amp = False
    if blend not in ('cosine', 'linear'):
        raise InvalidInputError(f"blend must be 'cosine' or 'linear', got {blend!r}.")
    pre = image if (isinstance(image, MedicalImage) and image.meta.get(PREPROCESSED_KEY)) \
        else preprocess_image(image, spacing=spacing, pad_multiple=pad_multiple)
    unpadded = tuple(pre.meta['unpadded_shape'])
    source_grid = GridGeometry.from_dict(pre.meta['source_grid'])
    input_grid = GridGeometry(unpadded, pre.spacing, pre.origin, pre.direction)
    arr = torch.from_numpy(np.ascontiguousarray(pre.array, dtype=np.float32))
    shape = tuple(arr.shape)
    mult = tuple(int(v) for v in pad_multiple)
    info: Dict[str, Any] = {}

    if tile_size is None:
        outputs = _forward(model, arr[None, None].to(device), amp)
        outputs = {k: v[0] for k, v in outputs.items()}
        strides = _strides_from(shape, outputs)
        info['tiles'] = 1
    else:
        outputs, strides, info = _embed_tiled(model, arr, device, amp, tile_size, overlap,
                                              mult, blend, progress)
    maps = {}
    for k, v in outputs.items():
        keep = [int(math.ceil(n / s)) for n, s in zip(unpadded, strides[k])]
        maps[k] = _renormalise(v[:, :keep[0], :keep[1], :keep[2]].contiguous())
    meta = {'source_path': pre.meta.get('source_path'), 'modality': pre.meta.get('modality'),
            'input_spacing': float(pre.meta.get('input_spacing', spacing)),
            'orientation': pre.meta.get('orientation'), 'amp': bool(amp), **info}
    return EmbeddingMaps(maps, strides, input_grid, source_grid, model_identity(model), meta)


def _embed_tiled(model, arr: torch.Tensor, device, amp: bool, tile_size, overlap,
                 mult: Tuple[int, int, int], blend: str, progress: bool):
    shape = tuple(arr.shape)
    tile = [min(_round_up(t, m), n) for t, m, n in
            zip(_triple_int(tile_size, 'tile_size', 1), mult, shape)]
    if overlap is None:
        ov = [_round_up(t // 4, m) if t < n else 0 for t, m, n in zip(tile, mult, shape)]
    else:
        ov = [_round_up(o, m) for o, m in zip(_triple_int(overlap, 'overlap', 0), mult)]
    for t, o, n in zip(tile, ov, shape):
        if t < n and o >= t:
            raise InvalidInputError(
                f'overlap {ov} must be smaller than the tile size {tile} (z, y, x voxels, '
                f'both rounded to multiples of {mult}).')
    starts = [_tile_starts(n, t, t - o) for n, t, o in zip(shape, tile, ov)]
    boxes = [(z, y, x) for z in starts[0] for y in starts[1] for x in starts[2]]
    acc: Dict[str, torch.Tensor] = {}
    wsum: Dict[str, torch.Tensor] = {}
    strides = None
    it = boxes
    if progress:
        from tqdm import tqdm
        it = tqdm(boxes, desc='embedding tiles', unit='tile', leave=False)
    for box in it:
        sl = tuple(slice(a, a + t) for a, t in zip(box, tile))
        out = _forward(model, arr[sl][None, None].to(device), amp)
        out = {k: v[0] for k, v in out.items()}
        if strides is None:
            strides = _strides_from(tile, out)
            for k, v in out.items():
                full = [n // s for n, s in zip(shape, strides[k])]
                acc[k] = torch.zeros((v.shape[0], *full), dtype=torch.float32, device=device)
                wsum[k] = torch.zeros(full, dtype=torch.float32, device=device)
        for k, v in out.items():
            s = strides[k]
            ramps = []
            for ax in range(3):
                a, t, n = box[ax], tile[ax], shape[ax]
                # overlap with the previous / next window along this axis (0 at the borders)
                idx = starts[ax].index(a)
                left = (starts[ax][idx - 1] + t - a) if idx > 0 else 0
                right = (a + t - starts[ax][idx + 1]) if idx + 1 < len(starts[ax]) else 0
                ramps.append(_ramp(t // s[ax], left // s[ax], right // s[ax], blend))
            w = (ramps[0][:, None, None] * ramps[1][None, :, None]
                 * ramps[2][None, None, :]).to(device=device, dtype=torch.float32)
            lsl = tuple(slice(a // si, (a + t) // si) for a, t, si in zip(box, tile, s))
            acc[k][(slice(None),) + lsl] += v * w
            wsum[k][lsl] += w
    outputs = {k: acc[k] / wsum[k].clamp_min(1e-12) for k in acc}
    info = dict(tiles=len(boxes), tile_size=tuple(tile), overlap=tuple(ov), blend=blend)
    return outputs, strides, info
