"""Eve: the embeddings Adam produces (Hosseinzadeh Taher et al., "Towards foundation models
learned from anatomy in medical imaging via self-supervision", DART 2023, arXiv:2309.15358),
for whole radiographs or square patches.

Images are 2D float arrays in ``[0, 1]`` (numpy order ``(row, column)``); patch centres are
continuous pixel ``(column, row)`` coordinates (pixel centres at integers). A patch of side
``patch_size`` pixels centred on ``(c, r)`` covers ``[c - patch_size / 2, c + patch_size / 2]``
horizontally (likewise vertically): it is sampled on a ``patch_size x patch_size`` grid
(bilinear, air = 0 outside the image), then resized to the network input ``size`` (area
averaging when shrinking, bilinear when enlarging), so the point always lies at the exact
centre of the network input. Intensities are normalised as in training,
``(x - mean) / std``; embeddings are the model's ``extract_feat`` (pooled backbone features),
L2-normalised, float32.
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from ..utils.device import model_device
from ..utils.exceptions import InvalidInputError


def eve_norm_params(cfg) -> dict:
    """``dict(size, mean, std, channels)`` of the first ``TwoViewXrayAugment`` (Adam v1) or
    ``AdamV2Views`` (Adam v2: its ``global_size``) in a config's pipelines
    (``train_pipeline`` or ``train_dataloader.dataset.pipeline``); the transform's
    defaults (224, 0.5, 0.25, 1) for the missing entries or when there is none."""
    out = dict(size=224, mean=0.5, std=0.25, channels=1)
    pipelines = []
    if cfg is not None:
        get = cfg.get if hasattr(cfg, 'get') else (lambda k, d=None: d)
        if get('train_pipeline'):
            pipelines.append(get('train_pipeline'))
        dl = get('train_dataloader') or {}
        ds = dl.get('dataset', {}) if hasattr(dl, 'get') else {}
        if hasattr(ds, 'get') and ds.get('pipeline'):
            pipelines.append(ds.get('pipeline'))
    for pipe in pipelines:
        for t in pipe:
            if isinstance(t, dict) or hasattr(t, 'get'):
                ttype = str(t.get('type', '')).split('.')[-1]
                if ttype in ('TwoViewXrayAugment', 'AdamV2Views'):  # Adam v1 / v2 views
                    size = t.get('out_size', 224) if ttype == 'TwoViewXrayAugment' else \
                        t.get('global_size', 224)
                    out.update(size=int(size), mean=float(t.get('mean', 0.5)),
                               std=float(t.get('std', 0.25)),
                               channels=int(t.get('channels', 1)))
                    return out
    return out


def _as_2d(img, what: str) -> np.ndarray:
    arr = np.asarray(getattr(img, 'array', img), dtype=np.float32)
    if arr.ndim != 2 or min(arr.shape) < 1:
        raise InvalidInputError(f'{what}: a 2D image (rows, columns) is needed, got shape '
                                f'{arr.shape}.')
    return arr


@torch.no_grad()
def _embed_batch(model, batch: torch.Tensor, mean: float, std: float,
                 channels: int) -> torch.Tensor:
    """``(N, 1, S, S)`` images in [0, 1] -> unit-length ``(N, C)`` features (float32, CPU)."""
    x = (batch - float(mean)) / float(std)
    if channels == 3:
        x = x.expand(-1, 3, -1, -1)
    dev = model_device(model)
    feat = model.extract_feat(x.to(dev)) if hasattr(model, 'extract_feat') else model(x.to(dev))
    if isinstance(feat, (tuple, list)):
        feat = feat[-1]
    if feat.dim() == 4:
        feat = feat.mean(dim=(2, 3))
    return F.normalize(feat.float().flatten(1), dim=1).cpu()


def resize_batch(x: torch.Tensor, size: int) -> torch.Tensor:
    """Resize a batch of images to the square network input.

    Area averaging when shrinking, bilinear (half-pixel aligned) when enlarging; pixel
    centres stay aligned in both cases.

    Args:
        x: ``(N, C, h, w)`` images.
        size: output side in pixels.

    Returns:
        ``(N, C, size, size)`` (``x`` itself when it already has that size).
    """
    h, w = x.shape[-2:]
    if (h, w) == (size, size):
        return x
    if h >= size and w >= size:
        return F.adaptive_avg_pool2d(x, (size, size))
    return F.interpolate(x, size=(size, size), mode='bilinear', align_corners=False)


def _batches(n: int, batch_size: int, progress: bool, desc: str):
    starts = range(0, n, max(1, int(batch_size)))
    if progress:
        from tqdm import tqdm
        starts = tqdm(starts, desc=desc, unit='batch', leave=False)
    return starts


def eve_embed_images(model, images: Sequence, size: int, mean: float = 0.5, std: float = 0.25,
                     channels: int = 1, batch_size: int = 32,
                     progress: bool = False) -> np.ndarray:
    """Eve embeddings of whole radiographs.

    Args:
        model: an Adam-like model with ``extract_feat((N, C, S, S)) -> (N, D)`` (e.g. from
            :func:`~mmanat.apis.init_model`), in eval mode.
        images: 2D arrays (or :class:`MedicalImage`) with values in ``[0, 1]``; each is
            resized (squashed) to ``size x size``.
        size: network input side in pixels.
        mean, std, channels: intensity normalisation and channel count used in training.
        batch_size: images per forward pass.
        progress: show a progress bar.

    Returns:
        float32 ``(N, D)`` unit-length embeddings.
    """
    size = int(size)
    if size < 2:
        raise InvalidInputError(f'size must be >= 2 pixels, got {size}.')
    arrs = [_as_2d(im, 'eve_embed_images') for im in images]
    out = []
    for s in _batches(len(arrs), batch_size, progress, 'Eve images'):
        batch = torch.cat([resize_batch(torch.from_numpy(np.ascontiguousarray(a))[None, None],
                                        size) for a in arrs[s:s + batch_size]])
        out.append(_embed_batch(model, batch, mean, std, channels))
    if not out:
        return np.zeros((0, 0), np.float32)
    return torch.cat(out).numpy().astype(np.float32)


def extract_patches(image, centres_px, patch_size: int, size: Optional[int] = None,
                    check_inside: bool = True) -> np.ndarray:
    """Square patches centred on continuous pixel ``(column, row)`` points.

    Args:
        image: 2D array (or :class:`MedicalImage`), numpy order ``(row, column)``.
        centres_px: ``(P, 2)`` pixel ``(column, row)`` centres.
        patch_size: patch side in image pixels (sampled on a ``patch_size`` grid whose centre
            is exactly the point; outside the image reads 0, i.e. air).
        size: output side (default ``patch_size``): area-averaged or bilinear resize.
        check_inside: raise :class:`InvalidInputError` for centres outside the image
            (``-0.5 <= column <= W - 0.5``, same for rows).

    Returns:
        float32 ``(P, size, size)``.
    """
    arr = _as_2d(image, 'extract_patches')
    h, w = arr.shape
    c = np.asarray(centres_px, dtype=np.float64).reshape(-1, 2)
    p = int(patch_size)
    if p < 1:
        raise InvalidInputError(f'patch_size must be >= 1 pixel, got {patch_size}.')
    size = p if size is None else int(size)
    if not np.all(np.isfinite(c)):
        raise InvalidInputError('patch centres must be finite numbers (pixel column, row).')
    if check_inside:
        bad = np.where((c[:, 0] < -0.5) | (c[:, 0] > w - 0.5) | (c[:, 1] < -0.5)
                       | (c[:, 1] > h - 0.5))[0]
        if len(bad):
            raise InvalidInputError(
                f'{len(bad)} patch centre(s) lie outside the {w} x {h} (columns x rows) image, '
                f'first: #{int(bad[0])} at pixel (column, row) = '
                f'({c[bad[0], 0]:.2f}, {c[bad[0], 1]:.2f}); give points inside the image.')
    if len(c) == 0:
        return np.zeros((0, size, size), np.float32)
    # sample offsets (pixels) relative to the centre: k + 0.5 - p / 2, k = 0..p-1
    off = np.arange(p, dtype=np.float64) + 0.5 - p / 2.0
    cols = c[:, 0:1] + off[None, :]  # (P, p)
    rows = c[:, 1:2] + off[None, :]
    # grid_sample, align_corners=False: pixel index i -> (2 i + 1) / n - 1
    gx = (2.0 * cols + 1.0) / w - 1.0
    gy = (2.0 * rows + 1.0) / h - 1.0
    grid = np.stack(np.broadcast_arrays(gx[:, None, :], gy[:, :, None]), axis=-1)  # (P,p,p,2)
    src = torch.from_numpy(np.ascontiguousarray(arr))[None, None].expand(len(c), 1, h, w)
    patches = F.grid_sample(src, torch.from_numpy(grid.astype(np.float32)), mode='bilinear',
                            padding_mode='zeros', align_corners=False)
    return resize_batch(patches, size)[:, 0].numpy().astype(np.float32)


def eve_embed_patches(model, image, centres_px, patch_size: int, size: int, mean: float = 0.5,
                      std: float = 0.25, channels: int = 1, batch_size: int = 64,
                      progress: bool = False) -> np.ndarray:
    """Eve embeddings of square patches centred on pixel ``(column, row)`` points.

    Args:
        model: as in :func:`eve_embed_images`.
        image: 2D array (or :class:`MedicalImage`) with values in ``[0, 1]``.
        centres_px: ``(P, 2)`` continuous pixel ``(column, row)`` centres (inside the image).
        patch_size: patch side in image pixels.
        size: network input side; each patch is resized to ``size x size``.
        mean, std, channels, batch_size, progress: as in :func:`eve_embed_images`.

    Returns:
        float32 ``(P, D)`` unit-length embeddings.
    """
    patches = extract_patches(image, centres_px, patch_size, size)
    out = []
    for s in _batches(len(patches), batch_size, progress, 'Eve patches'):
        batch = torch.from_numpy(patches[s:s + batch_size])[:, None]
        out.append(_embed_batch(model, batch, mean, std, channels))
    if not out:
        return np.zeros((0, 0), np.float32)
    return torch.cat(out).numpy().astype(np.float32)


def read_points_px(path: str, image) -> Tuple[list, np.ndarray]:
    """Read a points CSV for a 2D image: header ``name,x,y`` (world mm, converted with the
    image geometry) or ``name,column,row`` (pixels). Returns ``(names, (P, 2) column/row)``."""
    import csv
    import os.path as osp
    if not osp.isfile(path):
        raise InvalidInputError(f'points file {path} not found; give a CSV with a header '
                                'name,x,y (world mm) or name,column,row (pixels).')
    with open(path, newline='') as fh:
        rows = [r for r in csv.reader(fh) if r and any(v.strip() for v in r)]
    if not rows:
        raise InvalidInputError(f'points file {path} is empty; expected a header name,x,y.')
    header = [v.strip().lower() for v in rows[0]]
    if {'x', 'y'} <= set(header):
        keys, world = ('x', 'y'), True
    elif {'column', 'row'} <= set(header):
        keys, world = ('column', 'row'), False
    else:
        raise InvalidInputError(f'points file {path}: header {rows[0]} needs columns x,y '
                                '(world mm) or column,row (pixels), plus an optional name.')
    ia, ib = header.index(keys[0]), header.index(keys[1])
    iname = header.index('name') if 'name' in header else None
    names, vals = [], []
    for k, r in enumerate(rows[1:], start=2):
        try:
            vals.append((float(r[ia]), float(r[ib])))
        except (ValueError, IndexError):
            raise InvalidInputError(f'points file {path}, line {k}: {r} has no numeric '
                                    f'{keys[0]},{keys[1]} values.') from None
        names.append(r[iname].strip() if iname is not None and iname < len(r)
                     else f'point_{k - 2}')
    xy = np.asarray(vals, dtype=np.float64).reshape(-1, 2)
    if world:
        if not hasattr(image, 'world_to_index'):
            raise InvalidInputError(f'points file {path} has world x,y (mm) but the image has '
                                    'no geometry; use column,row pixel columns.')
        xy = image.world_to_index(xy)
    return names, xy
