#!/usr/bin/env python
"""Embed images once and cache the maps (fine, coarse[, semantic] + geometry + model identity)
for fast repeated matching with tools/match.py or mmanat.apis.load_embeddings.

Examples::

    python tools/embed.py data/my_cts/ --checkpoint K --out-dir outputs/embeddings
    python tools/embed.py a.nii.gz b.nrrd --checkpoint K --tile-size 96 192 192
    # split a large folder over 4 jobs (e.g. a cluster array): job i runs
    python tools/embed.py data/cts/ --checkpoint K --num-parts 4 --part-id $i
    # data-parallel on 8 GPUs of one node (each process takes every 8th file)
    torchrun --nproc_per_node 8 tools/embed.py data/cts/ --checkpoint K --launcher pytorch

Inputs: volume files (.nii, .nii.gz, .nrrd, .nhdr, .mha, .mhd) and folders, searched
recursively; a folder holding .dcm files is one DICOM series. Each input becomes
``OUT_DIR/<name>.emb.pt`` (for inputs found inside a folder, ``<name>`` is the path below
that folder with '/' replaced by '__'). An existing cache made by the same model is kept
unless --overwrite. A failed input is reported and skipped; the exit code is then 1.
"""
import argparse
import fnmatch
import os
import os.path as osp
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if ROOT not in sys.path:  # allow running from a checkout without installation
    sys.path.insert(0, ROOT)

VOLUME_EXTENSIONS = ('.nii.gz', '.nii', '.nrrd', '.nhdr', '.mha', '.mhd')


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0].replace('\n', ' '),
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('inputs', nargs='+', help='volume files and/or folders')
    p.add_argument('--config', default=None,
                   help='model config (default: the config stored in the checkpoint)')
    p.add_argument('--checkpoint', default=None, help='trained checkpoint (.pth); default: the shipped SAM model '
                   'checkpoints/sam_default.pth')
    p.add_argument('--random-init', action='store_true',
                   help='random weights of --config (pipeline tests only)')
    p.add_argument('--out-dir', default=osp.join('outputs', 'embeddings'),
                   help='where the .emb.pt caches go')
    p.add_argument('--dtype', default='float16', choices=['float16', 'float32'],
                   help='storage precision of the maps')
    p.add_argument('--tile-size', type=int, nargs='+', default=None,
                   help='tiled inference window (z y x voxels at 2 mm) for large volumes')
    p.add_argument('--overlap', type=int, nargs='+', default=None,
                   help='tile overlap (z y x voxels; default a quarter of the window)')
    p.add_argument('--modality', choices=['CT', 'MR'], default=None,
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
    if args.num_parts < 1 or not 0 <= args.part_id < args.num_parts:
        p.error(f'--part-id must be in [0, --num-parts={args.num_parts}).')
    return args


def _is_volume(name: str) -> bool:
    return name.lower().endswith(VOLUME_EXTENSIONS)


def _strip(name: str) -> str:
    low = name.lower()
    for ext in VOLUME_EXTENSIONS:
        if low.endswith(ext):
            return name[:-len(ext)]
    return name


def collect_inputs(inputs, exclude=()):
    """``[(path, cache name), ...]`` sorted by path: volume files and DICOM series folders."""
    from mmanat.utils.exceptions import InvalidInputError
    found = []

    def excluded(name):
        return any(fnmatch.fnmatch(name, pat) for pat in exclude)

    for item in inputs:
        if osp.isfile(item):
            if not excluded(osp.basename(item)):
                found.append((item, _strip(osp.basename(item))))
            continue
        if not osp.isdir(item):
            raise InvalidInputError(f'{item}: no such file or folder (working directory '
                                    f'{os.getcwd()}).')
        for dirpath, dirnames, filenames in os.walk(item):
            dirnames.sort()
            rel_dir = osp.relpath(dirpath, item)
            if any(f.lower().endswith('.dcm') for f in filenames):
                name = osp.basename(osp.normpath(item)) if rel_dir == '.' else rel_dir
                found.append((dirpath, name.replace(os.sep, '__')))
                dirnames[:] = []
                continue
            for f in sorted(filenames):
                if _is_volume(f) and not excluded(f):
                    rel = osp.normpath(osp.join(rel_dir, _strip(f)))
                    found.append((osp.join(dirpath, f), rel.replace(os.sep, '__')))
    found.sort()
    names = [n for _, n in found]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise InvalidInputError(f'several inputs map to the same cache name: {dup[:5]}; '
                                'embed them into different --out-dir folders.')
    if not found:
        raise InvalidInputError(f'no volume found in {list(inputs)} (extensions '
                                f'{", ".join(VOLUME_EXTENSIONS)} or DICOM folders).')
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


def main(argv=None) -> int:
    args = parse_args(argv)
    from mmanat.utils.exceptions import MMAnatError
    try:
        return _run(args)
    except MMAnatError as err:
        print(f'error: {err}', file=sys.stderr)
        return 2


def _run(args) -> int:
    from tqdm import tqdm

    from mmanat.apis import embed, init_model, load_embeddings, save_embeddings
    from mmanat.apis.cache import CACHE_SUFFIX
    from mmanat.fileio import read_volume
    from mmanat.utils.exceptions import InvalidInputError, MMAnatError

    from mmanat.apis.model_zoo import resolve_checkpoint
    checkpoint = resolve_checkpoint(args.checkpoint, args.random_init, args.config, 'sam')
    rank, world, dist_device = _dist_setup(args.launcher)
    items = collect_inputs(args.inputs, args.exclude)
    mine = items[args.part_id::args.num_parts][rank::world]
    model = init_model(args.config, checkpoint, device=args.device or dist_device)
    os.makedirs(args.out_dir, exist_ok=True)
    tile = args.tile_size if args.tile_size else None
    done, kept, failed = 0, 0, []
    t_start = time.perf_counter()
    bar = tqdm(mine, desc=f'embedding (rank {rank}/{world}, part {args.part_id}/'
               f'{args.num_parts})', unit='image', position=rank, disable=not mine)
    for path, name in bar:
        out = osp.join(args.out_dir, name + CACHE_SUFFIX)
        if osp.exists(out) and not args.overwrite:
            try:
                load_embeddings(out, expected_model=model)
                kept += 1
                continue
            except InvalidInputError:
                pass  # another model or an old format: recompute
        try:
            maps = embed(model, read_volume(path, modality=args.modality), tile_size=tile,
                         overlap=args.overlap)
            save_embeddings(maps, out, dtype=args.dtype)
            done += 1
        except MMAnatError as err:
            failed.append((path, str(err)))
            tqdm.write(f'error: {err}', file=sys.stderr)
    bar.close()
    print(f'rank {rank}: {done} embedded, {kept} already cached, {len(failed)} failed, of '
          f'{len(mine)} inputs ({len(items)} in total) in {time.perf_counter() - t_start:.1f} '
          f's -> {osp.abspath(args.out_dir)}')
    if args.launcher != 'none':
        import torch.distributed as dist
        dist.barrier()
        dist.destroy_process_group()
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
