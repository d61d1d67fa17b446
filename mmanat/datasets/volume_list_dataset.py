"""A dataset of 3D volumes given as a CSV/text list or as a folder to scan."""
from __future__ import annotations

import csv
import fnmatch
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

from mmengine.dataset import BaseDataset
from mmengine.registry import DefaultScope
from mmengine.logging import print_log

from mmanat.fileio.formats import VOLUME_EXTENSIONS, is_volume_file, strip_extension
from mmanat.registry import DATASETS
from mmanat.structures.image import MODALITIES
from mmanat.utils.exceptions import InvalidInputError

_IMAGE_COLUMNS = ('image', 'img_path', 'path', 'filename')
_LABEL_COLUMNS = ('label', 'label_path', 'mask', 'seg')


def scan_volume_folder(root: str, exclude: Sequence[str] = (),
                       dicom: bool = True) -> List[str]:
    """Volume files under ``root`` (recursive, sorted), plus folders that hold ``.dcm`` files
    (one DICOM series each) when ``dicom``; names matching an ``exclude`` glob (file or
    folder base name, case-insensitive) are skipped. Returns paths relative to ``root``."""
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith('.')
                         and not any(fnmatch.fnmatch(d.lower(), p.lower()) for p in exclude))
        rel_folder = osp.relpath(folder, root)
        has_dicom = False
        for name in sorted(files):
            if name.startswith('.'):
                continue
            if any(fnmatch.fnmatch(name.lower(), p.lower()) for p in exclude):
                continue
            if is_volume_file(name):
                found.append(osp.normpath(osp.join(rel_folder, name)))
            elif dicom and name.lower().endswith('.dcm'):
                has_dicom = True
        if has_dicom and rel_folder != '.':
            found.append(osp.normpath(rel_folder))
    return sorted(found)


def read_volume_csv(ann_file: str) -> List[Tuple[str, Dict[str, str]]]:
    """Rows of a volume list CSV as ``(where, dict(image, label, modality, subject_id))``;
    ``where`` names the file and line for error messages. Paths are returned as written."""
    with open(ann_file, newline='') as f:
        reader = csv.DictReader(f)
        fields = [(c or '').strip().lower() for c in (reader.fieldnames or [])]
        image_col = next((c for c in _IMAGE_COLUMNS if c in fields), None)
        if image_col is None:
            raise InvalidInputError(
                f'{ann_file}: no image column; the header row must name one of '
                f'{_IMAGE_COLUMNS} (found {fields}). Example header: image,label,modality')
        rows = []
        for lineno, row in enumerate(reader, start=2):
            row = {(k or '').strip().lower(): (v or '').strip() for k, v in row.items()
                   if isinstance(v, str) or v is None}
            if not row.get(image_col):
                if any(row.values()):
                    raise InvalidInputError(f'{ann_file}, line {lineno}: empty '
                                            f'{image_col!r} cell.')
                continue
            label = next((row[c] for c in _LABEL_COLUMNS if row.get(c)), '')
            rows.append((f'{ann_file}, line {lineno}',
                         dict(image=row[image_col], label=label,
                              modality=row.get('modality', ''),
                              subject_id=row.get('subject_id', ''))))
    return rows


def read_volume_txt(ann_file: str) -> List[Tuple[str, Dict[str, str]]]:
    """Rows of a text list (one path per line; blank and ``#`` lines skipped)."""
    rows = []
    with open(ann_file) as f:
        for lineno, line in enumerate(f, start=1):
            line = line.strip()
            if line and not line.startswith('#'):
                rows.append((f'{ann_file}, line {lineno}', dict(image=line)))
    return rows


def read_volume_list(ann_file: str) -> List[Tuple[str, Dict[str, str]]]:
    """:func:`read_volume_csv` for ``.csv`` files, else :func:`read_volume_txt`."""
    if not osp.isfile(ann_file):
        raise InvalidInputError(f'volume list {ann_file} not found; check the path.')
    if ann_file.lower().endswith('.csv'):
        return read_volume_csv(ann_file)
    return read_volume_txt(ann_file)


@DATASETS.register_module()
class VolumeListDataset(BaseDataset):
    """3D volumes from a CSV/text list or a scanned folder (any format ``read_volume`` reads).

    Each sample is ``dict(img_path, [label_path], [modality], subject_id, sample_idx)``;
    the pipeline (e.g. ``LoadVolume`` + ``RandomTwoViewCrop`` + ...) does the rest.

    Sources, in this order:

    * ``ann_file`` ending in ``.csv``: a header row with column ``image`` (also accepted:
      ``img_path``, ``path``, ``filename``) and optional ``label``, ``modality`` (CT/MR/...),
      ``subject_id``. The ``index.csv`` written by ``tools/preprocess.py`` is such a file.
    * ``ann_file`` with another ending (``.txt``, ``.lst``): one path per line; blank lines and
      lines starting with ``#`` are ignored.
    * no ``ann_file`` and ``data_root`` is a ``tools/preprocess.py`` output folder (holding
      ``index.csv`` and ``volumes/``): its ``index.csv``.
    * no ``ann_file`` otherwise: ``data_root`` is scanned recursively for ``.nii``, ``.nii.gz``,
      ``.nrrd``, ``.nhdr``, ``.mha``, ``.mhd`` files and (``scan_dicom``) folders holding a
      DICOM series (``.dcm`` files); names matching ``exclude`` globs (default: label, mask
      and segmentation files) are skipped.

    Relative paths in a list are relative to ``data_root`` when it is given, else to the
    folder of the list file. As in every mmengine dataset, a relative ``ann_file`` is itself
    joined with ``data_root``.

    Args:
        ann_file: CSV or text list; ``''`` to scan ``data_root``.
        data_root: root folder of the volumes (and of a relative ``ann_file``).
        modality: default modality for entries without one (``None``: the reader guesses).
        cache_dir: folder written by ``tools/preprocess.py``; entries whose source appears
            in its ``index.csv`` are read from the (memory-mappable) cache instead; the rest
            from their source (a warning says how many).
        exclude: glob patterns of file/folder names to skip when scanning a folder.
        scan_dicom: treat folders holding ``.dcm`` files as DICOM series when scanning.
        **kwargs: passed to :class:`mmengine.dataset.BaseDataset` (``pipeline``,
            ``serialize_data``, ``lazy_init``, ``indices``, ...).

    Raises:
        InvalidInputError: missing list file or volume (named with its row), unknown
            modality, empty dataset, unusable cache index.
    """

    METAINFO: dict = dict(dataset_type='volume_list')

    def __init__(self, ann_file: str = '', data_root: str = '',
                 modality: Optional[str] = None, cache_dir: Optional[str] = None,
                 exclude: Sequence[str] = ('*label*', '*mask*', '*seg*'),
                 scan_dicom: bool = True, **kwargs):
        self.default_modality = self._check_modality(modality, 'modality argument')
        self.cache_dir = cache_dir
        self.exclude = tuple(exclude)
        self.scan_dicom = scan_dicom
        kwargs.setdefault('data_prefix', dict())
        # build the pipeline in the mmanat scope when no scope is set (e.g. outside a Runner)
        scope = None if DefaultScope.get_current_instance() is not None else 'mmanat'
        with DefaultScope.overwrite_default_scope(scope):
            super().__init__(ann_file=ann_file, data_root=data_root, **kwargs)

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _check_modality(value, where: str) -> Optional[str]:
        if value is None or str(value).strip() == '':
            return None
        mod = str(value).strip().upper()
        if mod not in MODALITIES:
            raise InvalidInputError(f'{where}: unknown modality {value!r}; use one of '
                                    f'{MODALITIES} or leave it empty.')
        return mod

    def _resolve(self, path: str, base: str) -> str:
        path = osp.expanduser(path.strip())
        if osp.isabs(path):
            return osp.normpath(path)
        return osp.normpath(osp.join(base, path))

    def _load_cache_index(self) -> Dict[str, Dict[str, str]]:
        index = osp.join(self.cache_dir, 'index.csv')
        if not osp.isfile(index):
            raise InvalidInputError(
                f'cache_dir {self.cache_dir} has no index.csv; build it with '
                f'`python tools/preprocess.py INPUT --out {self.cache_dir}` or drop cache_dir.')
        table = {}
        with open(index, newline='') as f:
            for row in csv.DictReader(f):
                if not row.get('source') or not row.get('image'):
                    continue
                entry = dict(image=self._resolve(row['image'], self.cache_dir),
                             label=(self._resolve(row['label'], self.cache_dir)
                                    if row.get('label') else ''),
                             modality=row.get('modality', ''))
                table[osp.normpath(osp.abspath(row['source']))] = entry
        return table

    # ------------------------------------------------------------------ BaseDataset API
    def load_data_list(self) -> List[dict]:
        """Read the list (or scan the folder), check every file exists, apply the cache."""
        ann_file = self.ann_file
        if (not ann_file and self.data_root
                and osp.isfile(osp.join(self.data_root, 'index.csv'))
                and osp.isdir(osp.join(self.data_root, 'volumes'))):
            ann_file = osp.join(self.data_root, 'index.csv')  # a tools/preprocess.py cache
        if ann_file:
            if not osp.isfile(ann_file):
                raise InvalidInputError(
                    f'volume list {ann_file} not found (ann_file, joined with data_root '
                    f'{self.data_root!r} when relative); check the path.')
            base = self.data_root or osp.dirname(osp.abspath(ann_file))
            rows = read_volume_list(ann_file)
            source = ann_file
        else:
            if not self.data_root or not osp.isdir(self.data_root):
                raise InvalidInputError(
                    f'data_root {self.data_root!r} is not a folder; give a folder of volumes '
                    'or an ann_file (CSV with an "image" column, or a text list).')
            base = self.data_root
            rows = [(f'{self.data_root} (scanned)', dict(image=p))
                    for p in scan_volume_folder(self.data_root, self.exclude, self.scan_dicom)]
            source = self.data_root

        cache = self._load_cache_index() if self.cache_dir else {}
        data_list, missing, uncached = [], [], 0
        for where, row in rows:
            img_path = self._resolve(row['image'], base)
            label_path = self._resolve(row['label'], base) if row.get('label') else ''
            for p, what in ((img_path, 'image'), (label_path, 'label')):
                if p and not osp.exists(p):
                    missing.append(f'{where}: {what} {p}')
            modality = self._check_modality(row.get('modality'), where)
            rel = osp.relpath(img_path, base)
            subject_id = row.get('subject_id') or strip_extension(
                osp.basename(img_path) if rel.startswith('..') else rel)
            info = dict(img_path=img_path, subject_id=subject_id)
            if cache:
                hit = cache.get(osp.normpath(osp.abspath(img_path)))
                if hit is not None:
                    info['source_path'] = img_path
                    info['img_path'] = hit['image']
                    modality = modality or self._check_modality(hit['modality'], where)
                    if hit['label'] and not label_path:
                        label_path = hit['label']
                else:
                    uncached += 1
            modality = modality or self.default_modality
            if label_path:
                info['label_path'] = label_path
            if modality:
                info['modality'] = modality
            data_list.append(info)

        if missing:
            listing = '\n  '.join(missing[:10])
            more = f'\n  ... and {len(missing) - 10} more' if len(missing) > 10 else ''
            raise InvalidInputError(
                f'{len(missing)} file(s) listed in {source} do not exist:\n  {listing}{more}\n'
                'Fix the paths (relative paths are relative to data_root, else to the list '
                'file\'s folder) or remove the rows.')
        if not data_list:
            raise InvalidInputError(
                f'no volumes found in {source}; supported: {", ".join(VOLUME_EXTENSIONS)} '
                'files and DICOM series folders (names matching exclude='
                f'{list(self.exclude)} are skipped).')
        if cache and uncached:
            print_log(f'VolumeListDataset: {uncached} of {len(data_list)} volumes are not in '
                      f'the cache {self.cache_dir}; they are read from their source files.',
                      logger='current')
        return data_list
