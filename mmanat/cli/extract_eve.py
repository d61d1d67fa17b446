"""Eve embeddings (Adam) of whole radiographs, or of square patches around points.

``mmanat-extract-eve`` (same as ``python tools/extract_eve.py``). Examples::

    python tools/extract_eve.py \\
        --config configs/adam/adam_r18half-mlp_1xb32-cpu-350it_synthetic-cxr-64px.py \\
        --checkpoint adam.pth a.png b.dcm --out eve.npz
    python tools/extract_eve.py --config C --checkpoint K a.png --points pts.csv \\
        --patch-size 32 --out eve_patches.npz
    python tools/extract_eve.py --config C --random-init a.png --out baseline.npz

Inputs: PNG/JPEG/DICOM/NIfTI (2D) radiographs, read with mmanat.fileio.read_xray and scaled
to [0, 1] as in training. Whole images are resized to the model's input size (the
``out_size`` of TwoViewXrayAugment in the config, or --size) and normalised with that
transform's mean/std. With --points (CSV header ``name,x,y`` in the image's world mm, or
``name,column,row`` in pixels), every input gives one patch of --patch-size pixels centred on
each point. Output ``.npz``: ``names`` (image stem, or ``stem:point``), ``image_paths``,
``embeddings`` (float32, L2-normalised, one row per name), ``centres_px`` (patches only:
pixel column, row), plus ``size``, ``patch_size``, ``model`` (config/checkpoint identity).
"""
import argparse
import json
import os.path as osp
from typing import Optional, Sequence

from .outputs import output_file
from .runner import command


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0].replace('\n', ' '),
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('inputs', nargs='+', help='radiograph files (PNG/JPEG/DICOM/NIfTI)')
    p.add_argument('--config', default=None, help='Adam model config (default: the one stored '
                   'in the checkpoint)')
    g = p.add_mutually_exclusive_group()
    g.add_argument('--checkpoint', default=None, help='trained Adam checkpoint (.pth); '
                   'default: the shipped checkpoints/adam_default.pth')
    g.add_argument('--random-init', action='store_true',
                   help='no checkpoint: random weights (a baseline, for tests)')
    p.add_argument('--out', required=True, type=output_file, help='output .npz file')
    p.add_argument('--points', default=None,
                   help='CSV of patch centres: name,x,y (world mm) or name,column,row')
    p.add_argument('--patch-size', type=int, default=32, help='patch side in image pixels')
    p.add_argument('--size', type=int, default=None,
                   help='network input side (default: out_size of the config pipeline)')
    p.add_argument('--batch-size', type=int, default=32,
                   help='radiographs per forward pass')
    p.add_argument('--device', default=None, help="'cpu', 'cuda', ... (default: GPU if any)")
    p.add_argument('--no-progress', action='store_true', help='hide the progress bar')
    return p.parse_args(argv)


@command
def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry of ``mmanat-extract-eve``: parse, then :func:`extract_eve_embeddings`."""
    args = parse_args(argv)
    extract_eve_embeddings(args.inputs, args.out, config=args.config,
                           checkpoint=args.checkpoint, random_init=args.random_init,
                           points=args.points, patch_size=args.patch_size, size=args.size,
                           batch_size=args.batch_size, device=args.device,
                           progress=not args.no_progress)
    return 0


def extract_eve_embeddings(inputs: Sequence[str], out: str, *, config: Optional[str] = None,
                           checkpoint: Optional[str] = None, random_init: bool = False,
                           points: Optional[str] = None, patch_size: int = 32,
                           size: Optional[int] = None, batch_size: int = 32,
                           device: Optional[str] = None, progress: bool = True) -> str:
    """Eve embeddings of whole radiographs (or of patches around ``points``) to an ``.npz``.

    Args:
        inputs (list[str]): radiograph files (PNG/JPEG/DICOM/NIfTI).
        out (str): output ``.npz`` (see the module docstring for its arrays).
        config, checkpoint: the Adam model (default: the shipped checkpoint).
        random_init (bool): random weights of ``config`` (a baseline).
        points (str, optional): CSV of patch centres, ``name,x,y`` (world mm) or
            ``name,column,row`` (pixels).
        patch_size (int): patch side in image pixels.
        size (int, optional): network input side (default: the config pipeline's).
        batch_size (int): images per forward pass.
        device (str, optional): torch device.
        progress (bool): progress bars.

    Returns:
        str: ``out``.

    Raises:
        InvalidInputError: a missing input, a bad ``out`` name, a point outside an image.
    """
    import numpy as np

    from mmanat.apis import eve_embed_images, eve_embed_patches, eve_norm_params, init_model
    from mmanat.apis.eve import read_points_px
    from mmanat.datasets.radiograph_dataset import to_unit_range
    from mmanat.fileio import atomic_path, read_xray
    from mmanat.utils.exceptions import InvalidInputError

    for path in inputs:
        if not osp.isfile(path):
            raise InvalidInputError(f'input image {path} not found; give existing '
                                    'PNG/JPEG/DICOM/NIfTI radiograph files.')
    if config and not osp.isfile(config):
        raise InvalidInputError(f'config {config} not found.')
    if not out.endswith('.npz'):
        raise InvalidInputError(f'--out {out} must end with .npz.')
    from mmanat.utils.model_zoo import resolve_checkpoint
    checkpoint = resolve_checkpoint(checkpoint, random_init, config, 'adam')
    model = init_model(config, checkpoint, device=device, expect='2d-embedding',
                       user='tools/extract_eve.py')
    norm = eve_norm_params(getattr(model, 'cfg', None))
    size = int(size or norm['size'])
    kw = dict(mean=norm['mean'], std=norm['std'], channels=norm['channels'],
              batch_size=batch_size)
    names, paths, embs, centres = [], [], [], []
    if points is None:
        images = []
        for path in inputs:
            images.append(to_unit_range(read_xray(path).array))
            names.append(osp.basename(path).split('.')[0])
            paths.append(osp.abspath(path))
        embs.append(eve_embed_images(model, images, size, progress=progress, **kw))
    else:
        it = inputs
        if progress and len(it) > 1:
            from tqdm import tqdm
            it = tqdm(it, desc='images', unit='image')
        for path in it:
            image = read_xray(path)
            pnames, px = read_points_px(points, image)
            h, w = image.array.shape
            outside = (px[:, 0] < -0.5) | (px[:, 0] > w - 0.5) | (px[:, 1] < -0.5) | \
                (px[:, 1] > h - 0.5)
            if outside.any():
                k = int(np.argmax(outside))
                raise InvalidInputError(
                    f'point {pnames[k]!r} of {points} lies outside image {path} '
                    f'({w} x {h} pixels) at pixel (column, row) = ({px[k, 0]:.1f}, '
                    f'{px[k, 1]:.1f}); check that the points belong to this image (x,y '
                    'are world mm, column,row are pixels).')
            arr = to_unit_range(image.array)
            embs.append(eve_embed_patches(model, arr, px, patch_size, size,
                                          progress=progress and len(inputs) == 1,
                                          **kw))
            stem = osp.basename(path).split('.')[0]
            names += [f'{stem}:{n}' for n in pnames]
            paths += [osp.abspath(path)] * len(pnames)
            centres.append(px.astype(np.float32))
    emb = np.concatenate(embs).astype(np.float32)
    payload = dict(names=np.array(names), image_paths=np.array(paths), embeddings=emb,
                   size=np.int64(size), patch_size=np.int64(patch_size if
                                                             points else 0),
                   model=np.array(json.dumps(getattr(model, 'mmanat_identity', {}),
                                             default=str)))
    if centres:
        payload['centres_px'] = np.concatenate(centres)
    with atomic_path(out) as tmp:
        with open(tmp, 'wb') as fh:
            np.savez(fh, **payload)
    print(f'wrote {emb.shape[0]} Eve embeddings of dimension {emb.shape[1]} to {out}')
    return out

