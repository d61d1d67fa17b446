"""Embed images once and cache the maps (fine, coarse[, semantic] + geometry + model identity)
for fast repeated matching with mmanat-match or mmanat.apis.load_embeddings.

``mmanat-embed`` (same as ``python tools/embed.py``). Examples::

    mmanat-embed data/my_cts/ --checkpoint K --out-dir outputs/embeddings
    mmanat-embed a.nii.gz b.nrrd --checkpoint K --tile-size 96 192 192
    # split a large folder over 4 jobs (e.g. a cluster array): job i runs
    mmanat-embed data/cts/ --checkpoint K --num-parts 4 --part-id $i
    # data-parallel on 8 GPUs of one node (each process takes every 8th file)
    torchrun --nproc_per_node 8 tools/embed.py data/cts/ --checkpoint K --launcher pytorch
    # thousands of scans named in a list (one path per line), on slurm (one task per GPU)
    srun -n 16 python tools/embed.py --input-list scans.txt --checkpoint K --out-dir emb --index

Inputs: volume files (.nii, .nii.gz, .nrrd, .nhdr, .mha, .mhd) and folders, searched
recursively; a folder holding .dcm files is one DICOM series. Each input becomes
``OUT_DIR/<name>.emb.pt`` (for inputs found inside a folder, ``<name>`` is the path below
that folder with '/' replaced by '__'). An existing cache made by the same model is kept
unless --overwrite (or unless its --dtype differs). A failed input is reported and skipped;
the exit code is then 1. Images found by a folder scan whose modality is neither CT nor MR
(label maps, masks) are skipped with a note (--modality embeds them).

Collections: ``--input-list FILE`` names the inputs one per line (``#`` comments). Under
torchrun or slurm (``RANK``/``WORLD_SIZE`` or ``SLURM_PROCID``/``SLURM_NTASKS`` in the
environment) each process embeds its share by rank, also without ``--launcher`` (no process
group then). A rerun resumes: finished caches are kept, caches are written atomically, and
what a killed run left half-written is removed. With ``--index`` every job appends what it
embedded (or found ready) to ``OUT_DIR/embeddings_index.parts/`` and merges the parts into
``OUT_DIR/embeddings_index.csv`` (image, cache, model identity, shape, spacing, time;
:mod:`mmanat.apis.collection`) when it ends. Match one query against the collection with
``tools/query.py``.

2D images (radiographs: a DICOM file, PNG, 2D NRRD/MHA) are embedded by a 2D SAM
(``--checkpoint checkpoints/sam2d_default.pth``; docs/en/user_guides/xray_matching.md); name
their files (a folder of .dcm files is read as ONE series, a folder scan skips pictures)::

    mmanat-embed cxr/*.dcm --checkpoint checkpoints/sam2d_default.pth --out-dir emb2d
"""
import argparse
import fnmatch
import os
import os.path as osp
import sys
import time
from typing import List, Optional, Sequence, Tuple

from .outputs import output_dir
from .runner import command


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """The options of ``mmanat-embed``."""
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0].replace('\n', ' '),
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('inputs', nargs='*',
                   help='volume files and/or folders; 2D images (radiographs) as files')
    p.add_argument('--input-list', default=None,
                   help='text file naming inputs, one per line ("#" starts a comment); '
                   'relative paths are relative to the working directory')
    p.add_argument('--index', action='store_true',
                   help='record every cache in OUT_DIR/embeddings_index.csv (merged from one '
                   'part file per job)')
    p.add_argument('--config', default=None,
                   help='model config (default: the config stored in the checkpoint)')
    p.add_argument('--checkpoint', default=None, help='trained checkpoint (.pth), a 3D SAM / '
                   'UAE for volumes or a 2D SAM for 2D images; default: the shipped SAM model '
                   'checkpoints/sam_default.pth')
    p.add_argument('--random-init', action='store_true',
                   help='random weights of --config (pipeline tests only)')
    p.add_argument('--out-dir', default=osp.join('outputs', 'embeddings'), type=output_dir,
                   help='where the .emb.pt caches go')
    p.add_argument('--dtype', default='float16', choices=['float16', 'float32'],
                   help='storage precision of the maps')
    p.add_argument('--tile-size', type=int, nargs='+', default=None,
                   help='tiled inference window (z y x voxels at 2 mm; 2D images: y x) for '
                   'large volumes')
    p.add_argument('--overlap', type=int, nargs='+', default=None,
                   help='tile overlap (z y x voxels; default a quarter of the window)')
    p.add_argument('--modality', choices=['CT', 'MR', 'XR'], default=None,
                   help='modality when the files do not say (default: from the file)')
    p.add_argument('--exclude', nargs='*', default=[],
                   help='glob patterns of file names to skip, e.g. "*label*" "*mask*"')
    p.add_argument('--overwrite', action='store_true', help='recompute existing caches')
    p.add_argument('--num-parts', type=int, default=1, help='split the inputs into N parts')
    p.add_argument('--part-id', type=int, default=0, help='which part this job embeds')
    p.add_argument('--launcher', choices=['none', 'pytorch'], default='none',
                   help='pytorch: data-parallel over torchrun processes (by rank)')
    p.add_argument('--device', default=None, help='cpu, cuda, cuda:1 (default: GPU if any; '
                   'cuda:LOCAL_RANK with --launcher pytorch)')
    args = p.parse_args(argv)
    if not args.inputs and not args.input_list:
        p.error('give inputs (files, folders) and/or --input-list FILE.')
    if args.num_parts < 1 or not 0 <= args.part_id < args.num_parts:
        p.error(f'--part-id must be in [0, --num-parts={args.num_parts}).')
    return args


def read_input_list(path: str) -> List[str]:
    """The inputs named in a list file: one path per line, blank lines and ``#`` comments
    skipped.

    Raises:
        InvalidInputError: a missing file or a list without any path.
    """
    from mmanat.utils.exceptions import InvalidInputError
    if not osp.isfile(path):
        raise InvalidInputError(f'--input-list {path}: no such file (working directory '
                                f'{os.getcwd()}).')
    with open(path, 'r', encoding='utf-8') as fh:
        items = [ln.split('#', 1)[0].strip() for ln in fh]
    items = [i for i in items if i]
    if not items:
        raise InvalidInputError(f'--input-list {path}: names no input; write one image path '
                                'or folder per line.')
    return items


def collect_inputs(inputs: Sequence[str], exclude: Sequence[str] = ()
                   ) -> List[Tuple[str, str]]:
    """Volume files and DICOM series folders to embed, sorted by path.

    Args:
        inputs (list[str]): files and folders (searched recursively).
        exclude (list[str]): glob patterns of file names to skip.

    Returns:
        list[tuple[str, str]]: ``(path, cache name)`` pairs.

    Raises:
        InvalidInputError: a missing input, no volume at all, or two inputs with one name.
    """
    from mmanat.fileio.formats import (BITMAP_EXTENSIONS, VOLUME_EXTENSIONS, is_volume_file,
                                       strip_extension)
    from mmanat.utils.exceptions import InvalidInputError
    found = []

    def excluded(name):
        return any(fnmatch.fnmatch(name, pat) for pat in exclude)

    for item in inputs:
        if osp.isfile(item):
            if not excluded(osp.basename(item)):
                found.append((item, strip_extension(osp.basename(item),
                                                    VOLUME_EXTENSIONS + BITMAP_EXTENSIONS)))
            continue
        if not osp.isdir(item):
            raise InvalidInputError(f'{item}: no such file or folder (working directory '
                                    f'{os.getcwd()}); check the path.')
        for dirpath, dirnames, filenames in os.walk(item):
            dirnames.sort()
            rel_dir = osp.relpath(dirpath, item)
            if any(f.lower().endswith('.dcm') for f in filenames):
                name = osp.basename(osp.normpath(item)) if rel_dir == '.' else rel_dir
                found.append((dirpath, name.replace(os.sep, '__')))
                dirnames[:] = []
                continue
            for f in sorted(filenames):
                if is_volume_file(f) and not excluded(f):
                    rel = osp.normpath(osp.join(rel_dir, strip_extension(f, VOLUME_EXTENSIONS)))
                    found.append((osp.join(dirpath, f), rel.replace(os.sep, '__')))
    found.sort()
    names = [n for _, n in found]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise InvalidInputError(f'several inputs map to the same cache name: {dup[:5]}; '
                                'embed them into different --out-dir folders.')
    if not found:
        raise InvalidInputError(f'no volume found in {list(inputs)} (extensions '
                                f'{", ".join(VOLUME_EXTENSIONS)} or DICOM folders); point to '
                                'volume files or folders that hold them.')
    return found


def _dist_setup(launcher: str):
    """(rank, world size, device or None) for the launcher."""
    if launcher == 'none':
        return 0, 1, None
    import torch
    import torch.distributed as dist
    from mmengine.config import Config

    from mmanat.utils import setup_distributed
    setup_distributed(Config(dict()), launcher)  # CPU: gloo process group
    if not dist.is_initialized():  # CUDA: mmengine would init NCCL in its Runner; we do
        dist.init_process_group(backend='nccl')
    device = None
    if torch.cuda.is_available():
        local = int(os.environ.get('LOCAL_RANK', 0))
        torch.cuda.set_device(local)
        device = f'cuda:{local}'
    return dist.get_rank(), dist.get_world_size(), device


def cache_dtype(path: str) -> Optional[str]:
    """Storage precision (``'float16'`` / ``'float32'``) of an embedding cache, read without
    loading its maps into memory; ``None`` when the file is not a readable cache."""
    import torch
    try:
        obj = torch.load(path, map_location='cpu', weights_only=True, mmap=True)
        tensor = next(iter(obj['levels'].values()))['tensor']
    except Exception:  # noqa: BLE001 - any unreadable cache is recomputed
        return None
    return str(tensor.dtype).replace('torch.', '')


@command
def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry of ``mmanat-embed``: parse, then :func:`embed_files`."""
    args = parse_args(argv)
    inputs = list(args.inputs) + (read_input_list(args.input_list) if args.input_list else [])
    failed = embed_files(inputs, args.out_dir, config=args.config,
                         checkpoint=args.checkpoint, random_init=args.random_init,
                         dtype=args.dtype, tile_size=args.tile_size, overlap=args.overlap,
                         modality=args.modality, exclude=args.exclude,
                         overwrite=args.overwrite, num_parts=args.num_parts,
                         part_id=args.part_id, launcher=args.launcher, device=args.device,
                         index=args.index)
    return 1 if failed else 0


def embed_files(inputs: Sequence[str], out_dir: str, *, config: Optional[str] = None,
                checkpoint: Optional[str] = None, random_init: bool = False,
                dtype: str = 'float16', tile_size: Optional[Sequence[int]] = None,
                overlap: Optional[Sequence[int]] = None, modality: Optional[str] = None,
                exclude: Sequence[str] = (), overwrite: bool = False, num_parts: int = 1,
                part_id: int = 0, launcher: str = 'none',
                device: Optional[str] = None, index: bool = False) -> List[Tuple[str, str]]:
    """Embed every input (this job's share) into ``out_dir/<name>.emb.pt``.

    Args:
        inputs (list[str]): volume files, 2D image files and folders (see
            :func:`collect_inputs`).
        out_dir (str): folder of the caches.
        config, checkpoint, random_init: the model (default: the shipped SAM checkpoint).
        dtype (str): storage precision of the maps, 'float16' or 'float32'.
        tile_size, overlap (list[int], optional): tiled embedding window and overlap
            (z, y, x) voxels at 2 mm.
        modality (str, optional): 'CT' or 'MR' when the files do not say.
        exclude (list[str]): glob patterns of file names to skip.
        overwrite (bool): recompute caches made by the same model.
        num_parts, part_id (int): embed only part ``part_id`` of ``num_parts``.
        launcher (str): 'none' or 'pytorch' (data-parallel over torchrun ranks, with a
            process group). With 'none', ranks given by torchrun / slurm environment
            variables still split the inputs (:func:`mmanat.apis.collection.shard_from_env`).
        device (str, optional): torch device.
        index (bool): record every cache in ``out_dir/embeddings_index.csv``
            (:mod:`mmanat.apis.collection`).

    Returns:
        list[tuple[str, str]]: ``(path, error message)`` of the inputs that failed.
    """
    from tqdm import tqdm

    from mmanat.apis import embed, init_model, load_embeddings, save_embeddings
    from mmanat.apis.cache import CACHE_SUFFIX
    from mmanat.apis.model import DENSE_EMBEDDING_KINDS
    from mmanat.fileio import read_image
    from mmanat.utils.exceptions import InvalidInputError, MMAnatError
    from mmanat.utils.model_zoo import resolve_checkpoint

    from mmanat.apis.collection import IndexPart, index_row, merge_index, shard_from_env

    checkpoint = resolve_checkpoint(checkpoint, random_init, config, 'sam')
    rank, world, dist_device = _dist_setup(launcher)
    if launcher == 'none':
        rank, world = shard_from_env()  # torchrun / slurm without a process group
        if world > 1 and device is None and dist_device is None:
            import torch
            if torch.cuda.is_available():
                local = int(os.environ.get('LOCAL_RANK', os.environ.get('SLURM_LOCALID', 0)))
                dist_device = f'cuda:{local % torch.cuda.device_count()}'
    items = collect_inputs(inputs, exclude)
    mine = items[part_id::num_parts][rank::world]
    # a 3D SAM / UAE for volumes or a 2D SAM for 2D images: each image is checked against
    # the model's dimension when it is embedded
    model = init_model(config, checkpoint, device=device or dist_device,
                       expect=DENSE_EMBEDDING_KINDS, user='tools/embed.py')
    os.makedirs(out_dir, exist_ok=True)
    from mmanat.fileio.atomic import clean_folder_once
    clean_folder_once(out_dir)  # what a killed earlier run left, even if nothing is rewritten
    part = IndexPart(out_dir, f'part{part_id}-of-{num_parts}_rank{rank}-of-{world}') \
        if index else None
    part_tag = f'{part_id}/{num_parts}:{rank}/{world}'
    tile = tile_size if tile_size else None
    done, kept, failed = 0, 0, []
    t_start = time.perf_counter()
    bar = tqdm(mine, desc=f'embedding (rank {rank}/{world}, part {part_id}/'
               f'{num_parts})', unit='image', position=rank, disable=not mine)
    given = {osp.normpath(p) for p in inputs}
    skipped = []
    for path, name in bar:
        out = osp.join(out_dir, name + CACHE_SUFFIX)
        if osp.exists(out) and not overwrite:
            try:
                if cache_dtype(out) == dtype:  # same precision ...
                    old = load_embeddings(out, expected_model=model)  # ... and same model
                    kept += 1
                    if part is not None:
                        part.add(index_row(old, path, out, out_dir, dtype=dtype, seconds=None,
                                           status='cached', part=part_tag))
                    continue
            except InvalidInputError:
                pass  # another model or an old format: recompute
        try:
            image = read_image(path, modality=modality)
            known = ('CT', 'MR', 'XR') if image.ndim == 2 else ('CT', 'MR')
            if modality is None and image.modality not in known and \
                    osp.normpath(path) not in given:
                # found by a folder scan: a label map or mask beside the scans, not an input
                skipped.append(path)
                tqdm.write(f'skipped {path}: modality {image.modality} (a label map or mask?); '
                           'pass --modality CT/MR to embed it, or --exclude to silence this')
                continue
            t_one = time.perf_counter()
            maps = embed(model, image, tile_size=tile, overlap=overlap)
            save_embeddings(maps, out, dtype=dtype)
            done += 1
            if part is not None:
                part.add(index_row(maps, path, out, out_dir, dtype=dtype,
                                   seconds=time.perf_counter() - t_one, status='embedded',
                                   part=part_tag))
        except MMAnatError as err:
            failed.append((path, str(err)))
            tqdm.write(f'error: {err}', file=sys.stderr)
    bar.close()
    print(f'rank {rank}: {done} embedded, {kept} already cached, {len(skipped)} skipped, '
          f'{len(failed)} failed, of {len(mine)} inputs ({len(items)} in total) in '
          f'{time.perf_counter() - t_start:.1f} s -> {osp.abspath(out_dir)}')
    if launcher != 'none':
        import torch.distributed as dist
        dist.barrier()
        if index and rank == 0:
            print(f'index: {merge_index(out_dir)}')
        dist.destroy_process_group()
    elif index:  # independent jobs: each merges (locked, idempotent); the last sees all
        print(f'index: {merge_index(out_dir)}')
    return failed
