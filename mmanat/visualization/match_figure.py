"""Figures of a match: query (template) and match (target) in three orthogonal planes.

Planes are sampled in world space (LPS mm) through the point, so any orientation, spacing and
origin are shown with the correct physical aspect ratio and the usual radiological layout:

* axial (world z = const): patient right on the image left, anterior at the top;
* coronal (world y = const): patient right on the left, superior at the top;
* sagittal (world x = const): anterior on the left, superior at the top.

Intensity windows: CT uses a preset (soft tissue W400/L40, lung W1500/L-600, bone
W1800/L400), chosen automatically from the mean HU around the point unless given; MR and other
images use their min-max range.
"""
from __future__ import annotations

import os
import os.path as osp
from typing import Dict, Optional, Sequence, Tuple, Union

import numpy as np

from ..fileio.atomic import atomic_path
from ..structures.image import MedicalImage
from ..utils.exceptions import InvalidInputError

# name -> (level, width) in HU
CT_WINDOWS = {
    'soft_tissue': (40.0, 400.0),
    'lung': (-600.0, 1500.0),
    'bone': (400.0, 1800.0),
}
PLANES = ('axial', 'coronal', 'sagittal')
MAX_PIXELS = 512


def _local_mean(image: MedicalImage, point_mm, radius_mm: float = 10.0) -> float:
    """Mean intensity in a box of +-radius_mm around a world point (NaN if outside)."""
    centre = image.world_to_array_index(np.asarray(point_mm, dtype=np.float64))
    spacing_zyx = image.spacing[::-1]
    half = np.maximum(1, np.round(radius_mm / spacing_zyx)).astype(int)
    c = np.round(centre).astype(int)
    sl = tuple(slice(max(0, ci - h), max(0, min(n, ci + h + 1)))
               for ci, h, n in zip(c, half, image.shape))
    block = image.array[sl]
    return float(block.mean()) if block.size else float('nan')


def choose_ct_window(image: MedicalImage, point_mm, radius_mm: float = 10.0) -> str:
    """Window preset for a CT point: ``'lung'`` where the surroundings are air-filled lung
    (mean < -400 HU), ``'bone'`` where they are bone (mean > 300 HU), else
    ``'soft_tissue'``."""
    mean = _local_mean(image, point_mm, radius_mm)
    if not np.isfinite(mean):
        return 'soft_tissue'
    if mean < -400:
        return 'lung'
    if mean > 300:
        return 'bone'
    return 'soft_tissue'


def display_range(image: MedicalImage, point_mm=None, window: Union[str, Sequence[float],
                                                                     None] = 'auto'
                  ) -> Tuple[float, float, str]:
    """``(vmin, vmax, label)`` for showing ``image``.

    Args:
        image: the image.
        point_mm: the point of interest (for the automatic CT preset).
        window: ``'auto'`` (CT: preset chosen around the point; otherwise min-max), a preset
            name of :data:`CT_WINDOWS`, ``'minmax'``, or ``(level, width)``.
    """
    if window is None:
        window = 'auto'
    if not isinstance(window, str):
        level, width = (float(v) for v in window)
        if width <= 0:
            raise InvalidInputError(f'window width must be > 0, got {width}.')
        return level - width / 2, level + width / 2, f'L{level:g}/W{width:g}'
    name = window.lower()
    if name == 'auto':
        if image.modality == 'CT':
            name = choose_ct_window(image, point_mm) if point_mm is not None else 'soft_tissue'
        else:
            name = 'minmax'
    if name in CT_WINDOWS:
        level, width = CT_WINDOWS[name]
        return level - width / 2, level + width / 2, name.replace('_', ' ')
    if name == 'minmax':
        lo, hi = float(np.min(image.array)), float(np.max(image.array))
        return lo, (hi if hi > lo else lo + 1.0), 'min-max'
    raise InvalidInputError(f'unknown window {window!r}; use auto, minmax, '
                            f'{", ".join(CT_WINDOWS)} or (level, width).')


def orthogonal_planes(image: MedicalImage, point_mm, pixel_mm: Optional[float] = None
                      ) -> Dict[str, Tuple[np.ndarray, Tuple[float, float, float, float],
                                           Tuple[float, float]]]:
    """The axial, coronal and sagittal world planes through ``point_mm``.

    Returns:
        ``{plane: (pixels (rows, cols) float32 with NaN outside the image, extent (left,
        right, bottom, top) in mm for ``imshow``, (u, v) = the point in those axes)}``.
        Axial: columns world x, rows world y; coronal: x, z; sagittal: y, z. Pixels are
        square (``pixel_mm``; default the smallest spacing, coarser when a side would exceed
        512 pixels).
    """
    from scipy.ndimage import map_coordinates
    if image.ndim != 3:
        raise InvalidInputError(f'{image.path or "<in-memory image>"}: three-plane figures '
                                f'need a 3D volume, got {image.ndim}D.')
    p = np.asarray(point_mm, dtype=np.float64).reshape(3)
    lo, hi = image.world_bounds()
    half = np.abs(image.direction * image.spacing[None, :]).sum(1) / 2  # half a voxel, mm
    lo, hi = lo - half, hi + half
    ext = hi - lo
    px = float(pixel_mm) if pixel_mm else float(np.min(image.spacing))
    px = max(px, float(ext.max()) / MAX_PIXELS)
    axes = {'axial': (0, 1, 2), 'coronal': (0, 2, 1), 'sagittal': (1, 2, 0)}  # (u, v, fixed)
    arr = np.asarray(image.array, dtype=np.float32)
    out = {}
    for name in PLANES:
        u_ax, v_ax, w_ax = axes[name]
        nu = max(1, int(np.ceil(ext[u_ax] / px)))
        nv = max(1, int(np.ceil(ext[v_ax] / px)))
        u = lo[u_ax] + (np.arange(nu) + 0.5) * ext[u_ax] / nu
        v = lo[v_ax] + (np.arange(nv) + 0.5) * ext[v_ax] / nv
        if name == 'axial':
            rows = v  # y increasing downwards: anterior at the top
        else:
            rows = v[::-1]  # z: superior at the top
        uu, vv = np.meshgrid(u, rows, indexing='xy')
        world = np.empty(uu.shape + (3,))
        world[..., u_ax], world[..., v_ax], world[..., w_ax] = uu, vv, p[w_ax]
        idx = image.world_to_array_index(world.reshape(-1, 3)).T  # (3, n) z, y, x
        vals = map_coordinates(arr, idx, order=1, mode='nearest')
        outside = np.any((idx < -0.5) | (idx > np.asarray(arr.shape)[:, None] - 0.5), axis=0)
        vals[outside] = np.nan
        pix = vals.reshape(uu.shape).astype(np.float32)
        if name == 'axial':
            extent = (lo[u_ax], hi[u_ax], hi[v_ax], lo[v_ax])  # y grows downwards
        else:
            extent = (lo[u_ax], hi[u_ax], lo[v_ax], hi[v_ax])
        out[name] = (pix, extent, (p[u_ax], p[v_ax]))
    return out


_AXIS_LABELS = {'axial': ('x (mm, R -> L)', 'y (mm, A -> P)'),
                'coronal': ('x (mm, R -> L)', 'z (mm)'),
                'sagittal': ('y (mm, A -> P)', 'z (mm)')}


def plot_match(template_image: MedicalImage, query_mm, target_image: MedicalImage,
               match_mm, score: Optional[float], out_png: Union[str, os.PathLike],
               window: Union[str, Sequence[float], None] = 'auto',
               target_window: Union[str, Sequence[float], None] = None,
               title: Optional[str] = None, dpi: int = 100) -> str:
    """Save a PNG: two rows (template with the query, target with the match) by three
    orthogonal planes (axial, coronal, sagittal) through the point, the point marked.

    Args:
        template_image / target_image: the ORIGINAL images (any orientation), CT in HU.
        query_mm / match_mm: world LPS mm (x, y, z).
        score: similarity of the match (shown; ``None`` to omit).
        out_png: destination (written atomically).
        window: template window: ``'auto'``, a CT preset name (``'soft_tissue'``,
            ``'lung'``, ``'bone'``), ``'minmax'`` or ``(level, width)``.
        target_window: the same for the target (default: as ``window``).
        title: figure title (default: the two file names).
        dpi: resolution.

    Returns:
        The absolute path of the PNG.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    for role, image in (('template', template_image), ('target', target_image)):
        if not isinstance(image, MedicalImage) or image.ndim != 3:
            raise InvalidInputError(
                f'plot_match: the {role} must be a 3D MedicalImage, got '
                f'{getattr(image, "ndim", type(image).__name__)}D ({getattr(image, "path", "")}).')
    rows = [('template', template_image, query_mm, window, '#39ff14'),
            ('target', target_image, match_mm, target_window or window, '#ff3b30')]
    fig = Figure(figsize=(13.5, 9.0), dpi=dpi, facecolor='black')
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(2, 3, left=0.05, right=0.99, top=0.90, bottom=0.05,
                            wspace=0.18, hspace=0.32)
    for r, (role, image, point, win, colour) in enumerate(rows):
        point = np.asarray(point, dtype=np.float64).reshape(3)
        vmin, vmax, wlabel = display_range(image, point, win)
        planes = orthogonal_planes(image, point)
        name = osp.basename(image.path) if image.path else f'<{role}>'
        label = f'{role}: {name}   ({point[0]:.1f}, {point[1]:.1f}, {point[2]:.1f}) mm LPS'
        if role == 'target' and score is not None:
            label += f'   score {score:.3f}'
        label += f'   [{image.modality or "?"}, {wlabel}]'
        for c, plane in enumerate(PLANES):
            ax = fig.add_subplot(grid[r, c])
            ax.set_facecolor('black')
            pix, extent, (u, v) = planes[plane]
            ax.imshow(np.nan_to_num(pix, nan=vmin), cmap='gray', vmin=vmin, vmax=vmax,
                      extent=extent, interpolation='bilinear', aspect='equal')
            span = max(abs(extent[1] - extent[0]), abs(extent[3] - extent[2]))
            gap = 0.045 * span  # the crosshair stops short of the point: it stays visible
            for seg in ((extent[0], u - gap), (u + gap, extent[1])):
                ax.plot(seg, (v, v), color=colour, lw=0.7, alpha=0.6)
            for seg in ((min(extent[2], extent[3]), v - gap), (v + gap,
                                                                max(extent[2], extent[3]))):
                ax.plot((u, u), seg, color=colour, lw=0.7, alpha=0.6)
            ax.plot([u], [v], marker='o', ms=11, mfc='none', mec=colour, mew=1.5)
            ax.set_xlim(extent[0], extent[1])
            ax.set_ylim(extent[2], extent[3])
            ax.set_title(plane, color='white', fontsize=10)
            xl, yl = _AXIS_LABELS[plane]
            ax.set_xlabel(xl, color='#bbbbbb', fontsize=8)
            ax.set_ylabel(yl, color='#bbbbbb', fontsize=8)
            ax.tick_params(colors='#bbbbbb', labelsize=7)
            for sp in ax.spines.values():
                sp.set_color('#555555')
        fig.text(0.5, 0.935 if r == 0 else 0.475, label, color=colour, ha='center',
                 fontsize=11)
    if title is None:
        title = 'query (template)  ->  match (target)'
    fig.suptitle(title, color='white', fontsize=13, y=0.985)
    out = osp.abspath(os.fspath(out_png))
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format='png', facecolor=fig.get_facecolor(), dpi=dpi)
    return out
