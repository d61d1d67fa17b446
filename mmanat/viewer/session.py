"""The state behind one viewer page: the images it was started with, their embeddings (made
once, kept in ``.emb.pt`` caches) and one :class:`~mmanat.apis.Matcher` per target.

Every answer of the page comes from the public matching API (:class:`mmanat.apis.Matcher`,
:func:`mmanat.apis.search.sample_embeddings`), so a point matched in the browser gives the
same world position as the same point matched in Python on the same maps. The similarity
overlay is the SAM similarity (Yan et al., IEEE TMI 2022, arXiv:2012.02383, Sec. III-C: the
mean of the global and local cosine similarities) of the query at every target fine voxel of
a box around the match (:meth:`PreparedTarget.full_scores
<mmanat.apis.dense_scores.PreparedTarget.full_scores>`).
"""
from __future__ import annotations

import hashlib
import os
import os.path as osp
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np

from ..apis import Matcher, embed, init_model, load_embeddings, save_embeddings
from ..apis.search import sample_embeddings
from ..fileio import filename_stem, read_image
from ..structures import is_planar
from ..utils.exceptions import InvalidInputError
from ..utils.model_zoo import sha256_file
from .volumes import affine_3d, default_window, image_nifti, nifti_bytes, robust_range

#: matching methods the page may ask for (``consensus`` takes seconds per click on a CPU)
METHODS = ('reference', 'coarse_to_fine', 'consensus')
CACHE_SUFFIX = '.emb.pt'


class NotReadyError(InvalidInputError):
    """A match was asked for before the embeddings were ready (or after they failed)."""


@dataclass
class ViewerImage:
    """One image of the page: the template (index 0) or a target."""

    index: int
    role: str
    path: str
    image: Any
    maps: Any = None
    cache_path: Optional[str] = None
    _nifti: Optional[bytes] = field(default=None, repr=False)
    _range: Optional[tuple] = field(default=None, repr=False)

    @property
    def name(self) -> str:
        """The file name shown in the page (never the folder)."""
        return osp.basename(self.path)

    @property
    def planar(self) -> bool:
        """True for a 2D image (a radiograph)."""
        return is_planar(self.image)

    def nifti(self) -> bytes:
        """The image as NIfTI-1 bytes for NiiVue (built once)."""
        if self._nifti is None:
            self._nifti = image_nifti(self.image)
        return self._nifti

    def info(self) -> Dict[str, Any]:
        """What the page needs to know about the image (no path)."""
        if self._range is None:
            self._range = robust_range(self.image.array)
        lo, hi = self.image.world_bounds()
        return dict(index=self.index, role=self.role, name=self.name, planar=self.planar,
                    modality=self.image.modality, size=[int(v) for v in self.image.size],
                    spacing=[float(v) for v in self.image.spacing],
                    bounds_lps=[[float(v) for v in lo], [float(v) for v in hi]],
                    window=default_window(self.image.modality), robust=list(self._range),
                    url=f'/api/volume/{self.index}.nii', embedded=self.maps is not None)


class ViewerSession:
    """Images, embeddings and matchers of one viewer.

    Args:
        template: the template image file (a volume, or a 2D radiograph).
        targets: the target image files (of the template's dimension).
        checkpoint: the model checkpoint (the caches are keyed by its SHA-256).
        config: model config (default: the one stored in the checkpoint).
        cache_dir: folder of the ``.emb.pt`` caches (created when needed).
        spacing: network-input spacing in mm (default: the model's, 2 mm); 4 mm embeds eight
            times faster, less precisely.
        method: default matching method (``'reference'``: argmax over every target voxel,
            tens of milliseconds per click; see :data:`METHODS`).
        device: torch device of the model and the matching (default ``'cpu'``).
        modality: ``'CT'``, ``'MR'`` or ``'XR'`` when the files do not say.
        tile_size: tiled embedding window (z, y, x) at the input spacing.
        overlay_radius_mm: half size of the similarity-map box around a match.

    Raises:
        InvalidInputError: a missing or unreadable image, images of different dimensions,
            no checkpoint, an unknown method.
    """

    def __init__(self, template: str, targets: Sequence[str], checkpoint: Optional[str], *,
                 config: Optional[str] = None, cache_dir: str = 'work_dirs/viewer_cache',
                 spacing: Optional[float] = None, method: str = 'reference',
                 device: Optional[str] = 'cpu', modality: Optional[str] = None,
                 tile_size: Optional[Sequence[int]] = None, overlay_radius_mm: float = 32.0):
        if not targets:
            raise InvalidInputError('give at least one --target image.')
        if method not in METHODS:
            raise InvalidInputError(f'--method {method!r}: use one of {", ".join(METHODS)}.')
        if checkpoint is None or not osp.isfile(checkpoint):
            raise InvalidInputError(f'checkpoint {checkpoint!r} not found; pass --checkpoint '
                                    'PATH (e.g. checkpoints/sam_default.pth).')
        self.checkpoint, self.config = checkpoint, config
        self.checkpoint_sha = sha256_file(checkpoint)
        self.cache_dir, self.spacing, self.method = cache_dir, spacing, method
        self.device, self.tile_size = device or 'cpu', tile_size
        self.overlay_radius_mm = float(overlay_radius_mm)
        self.images: List[ViewerImage] = []
        for i, path in enumerate([template] + list(targets)):
            if not osp.isfile(path):
                raise InvalidInputError(f'{path}: file not found (working directory '
                                        f'{os.getcwd()}); check the path.')
            img = read_image(path, modality=modality)
            self.images.append(ViewerImage(i, 'template' if i == 0 else 'target',
                                           osp.abspath(path), img))
        planar = self.images[0].planar
        for im in self.images[1:]:
            if im.planar != planar:
                raise InvalidInputError(
                    f'{im.path} is {"2D" if im.planar else "3D"} but the template '
                    f'{self.images[0].path} is {"2D" if planar else "3D"}; view 2D images with '
                    '2D images and volumes with volumes.')
        self.planar = planar
        self.model = None
        self.matchers: Dict[int, Matcher] = {}
        self.status: Dict[str, Any] = dict(state='waiting', done=0, total=len(self.images),
                                           message='embeddings not started')
        self._lock = threading.Lock()
        self._overlays: Dict[int, tuple] = {}
        self._seq = 0
        self._mask = None
        self._thread: Optional[threading.Thread] = None

    # ------------------------------------------------------------------ embeddings
    @property
    def template(self) -> ViewerImage:
        """The template image."""
        return self.images[0]

    @property
    def targets(self) -> List[ViewerImage]:
        """The target images."""
        return self.images[1:]

    @property
    def ready(self) -> bool:
        """True once every image is embedded."""
        return self.status['state'] == 'ready'

    def cache_path(self, im: ViewerImage) -> str:
        """The cache file of an image: its name plus a key of the file (path, size,
        modification time), the checkpoint's SHA-256, the spacing and the tiling."""
        st = os.stat(im.path)
        key = '|'.join(str(v) for v in (im.path, st.st_size, st.st_mtime_ns, self.spacing,
                                         self.tile_size, self.checkpoint_sha, self.config,
                                         im.image.modality))
        digest = hashlib.sha256(key.encode('utf-8')).hexdigest()[:12]
        return osp.join(self.cache_dir, f'{filename_stem(im.path)}-{digest}{CACHE_SUFFIX}')

    def _model(self):
        if self.model is None:
            self.model = init_model(self.config, self.checkpoint, device=self.device,
                                    expect='2d-dense-embedding' if self.planar
                                    else '3d-embedding', user='mmanat-viewer')
        return self.model

    def prepare(self, log: Callable[[str], None] = print) -> None:
        """Embed every image (or load its cache), then build the matchers. Progress goes to
        ``log`` and to :attr:`status` (shown by the page)."""
        n = len(self.images)
        try:
            for i, im in enumerate(self.images):
                self.status.update(state='embedding', done=i, current=im.name,
                                   message=f'embedding {im.name} ({i + 1}/{n})')
                path = self.cache_path(im)
                t0 = time.perf_counter()
                if osp.isfile(path):
                    want = self.model if self.model is not None else \
                        dict(sha256=self.checkpoint_sha)
                    im.maps = load_embeddings(path, expected_model=want, device=self.device)
                    log(f'[viewer] ({i + 1}/{n}) {im.name}: cached embeddings {path}')
                else:
                    log(f'[viewer] ({i + 1}/{n}) {im.name}: embedding ...')
                    im.maps = embed(self._model(), im.image, tile_size=self.tile_size,
                                    spacing=self.spacing, progress=True)
                    save_embeddings(im.maps, path)
                    log(f'[viewer] ({i + 1}/{n}) {im.name}: embedded in '
                        f'{time.perf_counter() - t0:.1f} s, cached in {path}')
                im.cache_path = path
            for im in self.targets:
                m = Matcher(self.template.maps, im.maps)
                m.prepared  # noqa: B018 - lay the target out now, not on the first click
                self.matchers[im.index] = m
            self.status.update(state='ready', done=n, current=None, message='ready')
        except Exception as err:  # noqa: BLE001 - shown in the page, re-raised for the CLI
            self.status.update(state='error', message=f'{type(err).__name__}: {err}'
                               if not isinstance(err, InvalidInputError) else str(err))
            raise

    def start(self, log: Callable[[str], None] = print) -> threading.Thread:
        """Run :meth:`prepare` in a background thread (the page shows its progress)."""
        def run():
            try:
                self.prepare(log)
            except Exception as err:  # noqa: BLE001 - already in self.status
                log(f'[viewer] error: {err}')

        self._thread = threading.Thread(target=run, name='mmanat-viewer-embed', daemon=True)
        self._thread.start()
        return self._thread

    def wait(self, timeout: Optional[float] = None) -> bool:
        """Wait for the background embedding; True when ready."""
        if self._thread is not None:
            self._thread.join(timeout)
        return self.ready

    # ------------------------------------------------------------------ matching
    def _check_ready(self) -> None:
        if self.status['state'] == 'error':
            raise NotReadyError(f'the model or the embeddings failed to load: '
                                f'{self.status["message"]}')
        if not self.ready:
            raise NotReadyError(f'the embeddings are not ready yet ({self.status["message"]}); '
                                'wait for the progress bar to finish.')

    def query_array(self, points) -> np.ndarray:
        """Query points as ``(N, 3)`` LPS mm (``(N, 2)`` world x, y for 2D images)."""
        q = np.asarray(points, dtype=np.float64)
        q = q.reshape(-1, q.shape[-1]) if q.ndim else q.reshape(1, -1)
        if self.planar and q.shape[1] == 3:
            q = q[:, :2]
        want = 2 if self.planar else 3
        if q.shape[1] != want or not np.all(np.isfinite(q)):
            raise InvalidInputError(f'query points need {want} finite world coordinates, got '
                                    f'{q.tolist()[:3]}.')
        return q

    def check_inside(self, points, what: str = 'points') -> None:
        """Refuse points outside the template image (naming up to five of them).

        Raises:
            InvalidInputError: some point lies outside the template (LPS/RAS mix-up?).
        """
        xyz = self.query_array(points.xyz)
        inside = self.template.image.contains_world(xyz, margin=0.5)
        if not np.all(inside):
            bad = np.nonzero(~inside)[0]
            listing = ', '.join(f'{points.names[i]} {np.round(xyz[i], 1).tolist()}'
                                for i in bad[:5])
            lo, hi = self.template.image.world_bounds()
            raise InvalidInputError(
                f'{what}: {len(bad)} of {len(xyz)} points lie outside the template '
                f'{self.template.name} ({listing}{" ..." if len(bad) > 5 else ""}); it spans '
                f'{np.round(lo, 1).tolist()} to {np.round(hi, 1).tolist()} mm LPS. Wrong '
                'coordinate convention (try the RAS option) or points of another image?')

    def _consensus_cfg(self, method: str):
        if method != 'consensus':
            return None
        if self._mask is None:
            from ..structures.body import body_mask
            self._mask = body_mask(self.template.image)
        return dict(mask=self._mask)

    def match(self, points, method: Optional[str] = None, overlay: bool = False,
              targets: Optional[Sequence[int]] = None) -> Dict[str, Any]:
        """Match template points in the targets.

        Args:
            points: ``(N, 3)`` world LPS mm (``(N, 2)`` x, y for 2D images).
            method: a method of :data:`METHODS` (default: the session's).
            overlay: also compute the similarity map of the first point around each match
                (fetched by the page from ``/api/overlay/<target>/<seq>.nii``).
            targets: target indices (default: all).

        Returns:
            dict: ``method``, ``elapsed_ms`` and per target ``index``, ``name``, ``points``
            (``(N, 3)`` LPS; z = 0 for 2D), ``scores``, ``voxels`` (rounded ITK indices of the
            target image) and ``overlay`` (url and suggested display range) when asked.

        Raises:
            NotReadyError: embeddings not ready or failed.
            InvalidInputError: a bad method, points outside the template.
        """
        method = method or self.method
        if method not in METHODS:
            raise InvalidInputError(f'method {method!r}: use one of {", ".join(METHODS)}.')
        self._check_ready()
        q = self.query_array(points)
        idx = list(self.matchers) if targets is None else [int(t) for t in targets]
        t0 = time.perf_counter()
        out = []
        with self._lock:
            for t in idx:
                if t not in self.matchers:
                    raise InvalidInputError(f'target {t}: no such target image.')
                res = self.matchers[t].match(q, method=method,
                                             consensus_cfg=self._consensus_cfg(method))
                pts = res.points if res.points.shape[1] == 3 else \
                    np.concatenate([res.points, np.zeros((len(res.points), 1))], 1)
                item = dict(index=t, name=self.images[t].name, points=pts.tolist(),
                            scores=[float(v) for v in res.scores],
                            voxels=np.asarray(res.index_rounded).tolist())
                if overlay:
                    item['overlay'] = self._make_overlay(t, q[:1], pts[0],
                                                         float(res.scores[0]))
                out.append(item)
        return dict(method=method, elapsed_ms=1000 * (time.perf_counter() - t0), targets=out)

    def similarity_box(self, target: int, query, centre_lps) -> tuple:
        """The similarity of one query point at the target fine voxels of a box of
        :attr:`overlay_radius_mm` around ``centre_lps``.

        Returns:
            tuple: ``(values (z, y, x) float32, 4 x 4 ITK index -> LPS affine of the box)``;
            fine voxels outside the original target image are 0.
        """
        import torch
        m = self.matchers[target]
        prep = m.prepared
        q3 = np.asarray(query, dtype=np.float64).reshape(1, -1)
        if q3.shape[1] == 2:
            q3 = np.concatenate([q3, np.zeros((1, 1))], 1)
        with torch.no_grad():
            q = {lv: sample_embeddings(self.template.maps, q3, lv, prep.device)
                 for lv in prep.levels}
            sc = q['coarse'] @ prep.crows.t()
            total = prep.full_scores(q, sc)[0] / prep.L
            total = torch.where(prep.valid, total, torch.zeros_like(total))
            vol = total.view(prep.fshape).cpu().numpy().astype(np.float32)
        grid = m.target.grid('fine')
        c = np.rint(grid.world_to_array_index(np.asarray(centre_lps, np.float64)[None])[0])
        spacing_zyx = np.asarray(grid.spacing, dtype=np.float64)[::-1]
        r = np.ceil(self.overlay_radius_mm / spacing_zyx).astype(int)
        lo = np.clip(c - r, 0, np.asarray(vol.shape) - 1).astype(int)
        hi = np.clip(c + r + 1, lo + 1, np.asarray(vol.shape)).astype(int)
        box = vol[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
        aff = affine_3d(grid.affine)
        shift = np.eye(4)
        shift[:3, 3] = lo[::-1]  # ITK order i, j, k
        return np.ascontiguousarray(box), aff @ shift

    def _make_overlay(self, target: int, query, centre, score: float) -> Dict[str, Any]:
        box, aff = self.similarity_box(target, query, centre)
        self._seq += 1
        self._overlays[target] = (self._seq, nifti_bytes(box, aff, dtype='float32'))
        lo = max(0.0, min(score - 0.3, float(box.max()) - 0.05))
        return dict(url=f'/api/overlay/{target}/{self._seq}.nii', cal_min=lo,
                    cal_max=max(score, lo + 1e-3))

    def overlay_bytes(self, target: int, seq: int) -> bytes:
        """The NIfTI bytes of the latest similarity overlay of a target.

        Raises:
            InvalidInputError: no such overlay (an older one is not kept).
        """
        have = self._overlays.get(int(target))
        if have is None or have[0] != int(seq):
            raise InvalidInputError(f'overlay {target}/{seq} is not available (only the latest '
                                    'overlay of each target is kept).')
        return have[1]

    def info(self) -> Dict[str, Any]:
        """The page's start-up facts: images, default method, status."""
        return dict(images=[im.info() for im in self.images], planar=self.planar,
                    method=self.method, methods=list(METHODS), status=dict(self.status),
                    checkpoint=osp.basename(self.checkpoint))
