"""Eve's claimed properties (Adam: Hosseinzadeh Taher et al., DART 2023), measured on
synthetic chest X-rays with landmarks:
locality (cross-subject nearest-neighbour landmark retrieval) and compositionality (a
region's embedding against the mean of its parts). Used by ``tools/analysis/eve_properties.py``
and ``tools/analysis/compare_adam.py``."""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np


def locality(embs, valid, names):
    """Top-1 landmark retrieval across subjects.

    Args:
        embs: per subject ``(L, D)`` unit embeddings of all ``L`` landmarks (rows of invalid
            landmarks are ignored).
        valid: per subject bool ``(L,)``.
        names: the ``L`` landmark names (same order for every subject).

    Returns:
        dict(top1, chance, queries, per_landmark={name: accuracy}).
    """
    hits = np.zeros(len(names))
    counts = np.zeros(len(names))
    chance = []
    for a in range(len(embs)):
        for b in range(len(embs)):
            if a == b:
                continue
            vb = np.flatnonzero(valid[b])
            q = np.flatnonzero(valid[a] & valid[b])
            if len(q) == 0 or len(vb) == 0:
                continue
            sims = embs[a][q] @ embs[b][vb].T  # (Q, |vb|)
            nn = vb[np.argmax(sims, axis=1)]
            np.add.at(hits, q, (nn == q).astype(float))
            np.add.at(counts, q, 1.0)
            chance.append(np.full(len(q), 1.0 / len(vb)))
    n = counts.sum()
    per = {nm: float(h / c) for nm, h, c in zip(names, hits, counts) if c > 0}
    return dict(top1=float(hits.sum() / max(n, 1)),
                chance=float(np.concatenate(chance).mean()) if chance else float('nan'),
                queries=int(n), per_landmark=per)


def region_layout(img_size, patch_size, n_regions, rng):
    """Random regions (side ``2 * patch_size``) inside the image, their 4 quadrant centres and
    4 random non-overlapping part centres (side ``patch_size``), pixel (column, row).

    Returns ``(regions (R, 2), quadrants (R, 4, 2), randoms (R, 4, 2))``."""
    from mmanat.utils.exceptions import InvalidInputError
    side = 2 * patch_size
    lo, hi = side / 2.0 - 0.5, img_size - side / 2.0 - 0.5
    if hi < lo:
        raise InvalidInputError(f'regions of {side} px (2 x --patch-size) do not fit a '
                                f'{img_size} px image; lower --patch-size.')
    reg = rng.uniform(lo, hi, size=(n_regions, 2))
    q = patch_size / 2.0
    quad = reg[:, None, :] + np.array([[-q, -q], [q, -q], [-q, q], [q, q]])[None]
    plo, phi = patch_size / 2.0 - 0.5, img_size - patch_size / 2.0 - 0.5
    cand = rng.uniform(plo, phi, size=(n_regions, 256, 2))
    # a part does not overlap the region when it is >= (side + patch) / 2 away on some axis
    far = np.max(np.abs(cand - reg[:, None, :]), axis=2) >= (side + patch_size) / 2.0
    order = np.argsort(~far, axis=1, kind='stable')[:, :4]  # first 4 far candidates
    if not np.all(np.take_along_axis(far, order, axis=1)):
        raise InvalidInputError('could not place random parts outside a region; use a smaller '
                         '--patch-size or a larger --img-size')
    rnd = np.take_along_axis(cand, order[..., None], axis=1)
    return reg, quad, rnd


def composition_cosine(region_emb, part_embs):
    """Cosine between each region embedding ``(R, D)`` and the mean of its parts
    ``(R, 4, D)``."""
    m = part_embs.mean(axis=1)
    m = m / np.maximum(np.linalg.norm(m, axis=1, keepdims=True), 1e-12)
    return np.sum(region_emb * m, axis=1)


def measure_eve_properties(model, dataset, patch_size: int, regions: int, seed: int = 0,
                           size: Optional[int] = None, mean: float = 0.5, std: float = 0.25,
                           channels: int = 1, progress: bool = True) -> Tuple[dict, tuple]:
    """Locality and compositionality of ``model`` (an Adam model) on a
    :class:`~mmanat.datasets.SyntheticRadiographDataset`.

    Returns:
        ``(results, (embeddings, landmark_index, landmark_names))``: results hold
        ``locality_top1``, ``locality_chance``, ``locality_queries``, ``comp_quadrants``,
        ``comp_random``, ``comp_gap``, ``comp_regions``, ``locality_per_landmark``,
        ``subjects``, ``patch_size``, ``input_size``; the embeddings of all valid landmark
        patches (for plots) with their landmark indices.
    """
    from ..apis import eve_embed_patches
    from ..utils.exceptions import InvalidInputError
    size = int(size or patch_size)
    kw = dict(mean=mean, std=std, channels=channels)
    rng = np.random.default_rng(seed)
    names = None
    embs, valid, quad_cos, rand_cos = [], [], [], []
    from tqdm import tqdm
    for i in tqdm(range(len(dataset)), desc='subjects', unit='subject', disable=not progress):
        item = dataset.render(dataset.get_data_info(i)['seed'])
        img = item['img']
        if names is None:
            names = list(item['landmark_names'])
        elif list(item['landmark_names']) != names:
            raise InvalidInputError('synthetic subjects carry different landmark lists.')
        v = np.asarray(item['landmark_valid'], bool)
        e = np.zeros((len(names), 0), np.float32)
        if v.any():
            ev = eve_embed_patches(model, img, item['landmarks'][v], patch_size, size, **kw)
            e = np.zeros((len(names), ev.shape[1]), np.float32)
            e[v] = ev
        embs.append(e)
        valid.append(v)
        reg, quad, rnd = region_layout(img.shape[0], patch_size, regions, rng)
        r_e = eve_embed_patches(model, img, reg, 2 * patch_size, size, **kw)
        parts = eve_embed_patches(model, img, np.concatenate([quad, rnd]).reshape(-1, 2),
                                  patch_size, size, **kw).reshape(2, len(reg), 4, -1)
        quad_cos.append(composition_cosine(r_e, parts[0]))
        rand_cos.append(composition_cosine(r_e, parts[1]))
    dim = max(e.shape[1] for e in embs)
    embs = [e if e.shape[1] == dim else np.zeros((len(names), dim), np.float32) for e in embs]
    loc = locality(embs, valid, names)
    qc, rc = np.concatenate(quad_cos), np.concatenate(rand_cos)
    res = dict(subjects=len(dataset), patch_size=int(patch_size), input_size=size,
               locality_top1=loc['top1'], locality_chance=loc['chance'],
               locality_queries=loc['queries'],
               comp_quadrants=float(qc.mean()), comp_random=float(rc.mean()),
               comp_gap=float(qc.mean() - rc.mean()), comp_regions=int(len(qc)),
               locality_per_landmark=loc['per_landmark'])
    all_e = np.concatenate([e[v] for e, v in zip(embs, valid)])
    labels = np.concatenate([np.flatnonzero(v) for v in valid])
    return res, (all_e, labels, names)
