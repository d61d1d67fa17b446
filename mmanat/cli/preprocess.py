"""Build a training-ready cache of CT/MR volumes for SAM (resampling, body crop).

Per volume: read (NIfTI, NRRD, MetaImage, DICOM series folder), reorient to LPS, resample to
``--spacing`` mm, crop to the body, and store ``volumes/<key>.npy`` (``(z, y, x)``, int16 HU
for CT; memory-mappable, so random crops read only what they need) with
``volumes/<key>.json`` (origin/spacing/direction, modality, MR percentile window, source).
Finally ``index.csv`` (columns image,label,modality,source,subject_id) lists every cached
volume; use it as ``VolumeListDataset(ann_file='index.csv', data_root=OUT)`` or pass
``cache_dir=OUT`` to a dataset built on the original list.

Resumable: an entry whose JSON sidecar exists, is complete and was made with the same
settings is skipped; every file is written atomically. A file that cannot be processed is
reported by name and skipped; the exit code is 1 when any failed.

Usage (``mmanat-preprocess`` is the same command)::

    python tools/preprocess.py INPUT --out DIR [--spacing 2.0] [--workers N]
        [--modality CT|MR] [--no-body-crop] [--mask-body] [--overwrite]

INPUT is a folder (scanned recursively; label/mask/seg files skipped) or a list: a CSV with
an ``image`` column (optional ``label``, ``modality``, ``subject_id``) or a text file with
one path per line. Relative paths in a list are relative to the list's folder (or
``--data-root``).
"""
from __future__ import annotations

import argparse
import csv
import os
import os.path as osp
import re
import sys
import time
from typing import Dict, List, Optional, Sequence

from .outputs import output_dir
from .runner import command

INDEX_COLUMNS = ('image', 'label', 'modality', 'source', 'subject_id')


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Resample, body-crop and cache CT/MR volumes for SAM training.')
    parser.add_argument('input', help='folder of volumes, or a CSV/text list of volumes')
    parser.add_argument('--out', required=True, type=output_dir, help='output cache folder')
    parser.add_argument('--spacing', type=float, default=2.0,
                        help='isotropic voxel size in mm (default 2.0; SAM also uses 1.6)')
    parser.add_argument('--workers', type=int, default=1,
                        help='parallel processes (default 1 = in this process)')
    parser.add_argument('--modality', choices=['CT', 'MR'], default=None,
                        help='modality of volumes whose list row gives none (default: guess '
                             'from the file: DICOM tag, header, intensity range)')
    parser.add_argument('--data-root', default=None,
                        help='base folder of relative paths in a list (default: its folder)')
    parser.add_argument('--no-body-crop', action='store_true',
                        help='keep the whole field of view (default: crop to the body box)')
    parser.add_argument('--body-margin', type=int, default=2,
                        help='voxels kept around the body box (default 2)')
    parser.add_argument('--mask-body', action='store_true',
                        help='set everything outside the body mask to air (removes the CT '
                             'table)')
    parser.add_argument('--overwrite', action='store_true',
                        help='redo entries that are already cached')
    return parser.parse_args(argv)


def _safe_key(text: str) -> str:
    text = text.replace('\\', '/').strip('/')
    text = text.replace('/', '__')
    return re.sub(r'[^A-Za-z0-9_.+-]', '_', text) or 'volume'


def collect_jobs(args: argparse.Namespace) -> List[Dict[str, Optional[str]]]:
    """One job per input volume: source, label, modality, subject_id, cache key."""
    from mmanat.datasets.volume_list_dataset import read_volume_list, scan_volume_folder
    from mmanat.fileio.formats import VOLUME_EXTENSIONS, strip_extension

    def _strip_ext(name: str) -> str:
        return strip_extension(name, VOLUME_EXTENSIONS + ('.npy', '.dcm'))
    from mmanat.utils.exceptions import InvalidInputError
    src = args.input
    jobs = []
    if osp.isdir(src) and not _looks_like_dicom_folder(src):
        base = src
        for rel in scan_volume_folder(src, exclude=('*label*', '*mask*', '*seg*')):
            jobs.append(dict(source=osp.join(src, rel), label=None, modality=args.modality,
                             subject_id=_strip_ext(rel), where=rel))
    elif osp.isdir(src):  # a single DICOM series folder
        jobs.append(dict(source=src, label=None, modality=args.modality,
                         subject_id=osp.basename(osp.normpath(src)), where=src))
        base = osp.dirname(osp.normpath(src))
    elif osp.isfile(src):
        base = args.data_root or osp.dirname(osp.abspath(src))
        for where, row in read_volume_list(src):
            path = row['image']
            path = path if osp.isabs(path) else osp.join(base, path)
            label = row.get('label') or None
            if label and not osp.isabs(label):
                label = osp.join(base, label)
            rel = osp.relpath(path, base)
            sid = row.get('subject_id') or _strip_ext(
                osp.basename(path) if rel.startswith('..') else rel)
            jobs.append(dict(source=path, label=label,
                             modality=(row.get('modality') or '').upper() or args.modality,
                             subject_id=sid, where=where))
    else:
        raise InvalidInputError(f'input {src} is neither a folder nor a list file; give a '
                                'folder of volumes or a CSV/text list.')
    seen: Dict[str, int] = {}
    for job in jobs:
        key = _safe_key(job['subject_id'])
        if key in seen:  # disambiguate deterministically, in input order
            seen[key] += 1
            key = f'{key}_{seen[key]}'
        seen.setdefault(key, 0)
        job['key'] = key
    return jobs


def _looks_like_dicom_folder(path: str) -> bool:
    try:
        names = os.listdir(path)
    except OSError:
        return False
    return any(n.lower().endswith('.dcm') for n in names) and not any(
        osp.isdir(osp.join(path, n)) for n in names)


def _settings(args) -> dict:
    return dict(spacing=float(args.spacing), body_crop=not args.no_body_crop,
                body_margin=int(args.body_margin), mask_body=bool(args.mask_body))


def process_job(job: dict, out_dir: str, settings: dict, overwrite: bool) -> dict:
    """Run one job; never raises: returns dict(status='done'|'skipped'|'failed', ...)."""
    from mmanat.datasets.volume_cache import (is_complete_cache, preprocess_volume,
                                              read_cache_meta)
    npy = osp.join(out_dir, 'volumes', job['key'] + '.npy')
    result = dict(job, npy=npy)
    try:
        if not overwrite and is_complete_cache(npy):
            meta = read_cache_meta(npy)
            if (meta.get('preprocess') == settings
                    and meta.get('source') == osp.abspath(job['source'])):
                return dict(result, status='skipped', meta=meta)
        if not osp.exists(job['source']):
            raise FileNotFoundError(f'{job["source"]} does not exist')
        meta = preprocess_volume(job['source'], npy, spacing=settings['spacing'],
                                 modality=job['modality'], label_path=job['label'],
                                 body_crop=settings['body_crop'],
                                 body_margin=settings['body_margin'],
                                 mask_body=settings['mask_body'])
        return dict(result, status='done', meta=meta)
    except Exception as err:  # noqa: BLE001 - one bad file must not stop the others
        return dict(result, status='failed', error=f'{type(err).__name__}: {err}')


def _worker_init():
    import SimpleITK as sitk
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)


def _run_job(payload):
    return process_job(*payload)


def write_index(out_dir: str, results: List[dict]) -> str:
    """Write ``index.csv`` (paths relative to ``out_dir``) for the cached volumes."""
    from mmanat.fileio.atomic import atomic_path
    path = osp.join(out_dir, 'index.csv')
    with atomic_path(path) as tmp:
        with open(tmp, 'w', newline='') as f:
            writer = csv.DictWriter(f, fieldnames=INDEX_COLUMNS)
            writer.writeheader()
            for res in results:
                meta = res['meta']
                writer.writerow(dict(
                    image=osp.relpath(res['npy'], out_dir),
                    label=(osp.join('volumes', meta['label']) if meta.get('label') else ''),
                    modality=meta.get('modality') or '',
                    source=osp.abspath(res['source']),
                    subject_id=res['subject_id']))
    return path


@command
def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry of ``mmanat-preprocess``; returns the exit code (0 = all done, 1 = some volumes
    failed, 2 = bad input)."""
    args = parse_args(argv)
    from tqdm import tqdm

    from mmanat.utils.exceptions import InvalidInputError
    if args.spacing <= 0:
        raise InvalidInputError(f'--spacing must be > 0, got {args.spacing}')
    jobs = collect_jobs(args)
    if not jobs:
        raise InvalidInputError(f'no volumes found in {args.input}')
    out_dir = osp.abspath(args.out)
    os.makedirs(osp.join(out_dir, 'volumes'), exist_ok=True)
    settings = _settings(args)
    payloads = [(job, out_dir, settings, args.overwrite) for job in jobs]
    start = time.time()
    results = []
    bar = tqdm(total=len(jobs), desc='preprocess', unit='vol', file=sys.stderr)
    if args.workers > 1:
        import multiprocessing as mp
        ctx = mp.get_context('spawn')  # SimpleITK/torch threads and fork do not mix
        with ctx.Pool(args.workers, initializer=_worker_init) as pool:
            for res in pool.imap_unordered(_run_job, payloads):
                results.append(res)
                bar.update(1)
                if res['status'] == 'failed':
                    bar.write(f'FAILED {res["source"]}: {res["error"]}')
    else:
        for payload in payloads:
            res = _run_job(payload)
            results.append(res)
            bar.update(1)
            if res['status'] == 'failed':
                bar.write(f'FAILED {res["source"]}: {res["error"]}')
    bar.close()
    order = {job['key']: i for i, job in enumerate(jobs)}
    results.sort(key=lambda r: order[r['key']])
    ok = [r for r in results if r['status'] != 'failed']
    failed = [r for r in results if r['status'] == 'failed']
    index = write_index(out_dir, ok)
    n_done = sum(r['status'] == 'done' for r in results)
    n_skip = sum(r['status'] == 'skipped' for r in results)
    print(f'{n_done} processed, {n_skip} already cached (skipped), {len(failed)} failed in '
          f'{time.time() - start:.1f} s; index: {index}')
    if failed:
        print('Failed volumes (fix or remove them, then re-run; finished ones are kept):',
              file=sys.stderr)
        for r in failed:
            print(f'  {r["source"]} ({r["where"]}): {r["error"]}', file=sys.stderr)
        return 1
    return 0

