"""Figure of landmarks matched between two 2D images (radiographs): the template with its
landmarks, the target with the matches and, where known, the true positions and the error of
each match in mm.

Images are drawn in world millimetres of their plane (``extent`` from the pixel grid; the
image's x axis to the right, y downwards, as a radiograph is read), so points are plotted at
their world ``(x, y)`` whatever the pixel spacing.
"""
from __future__ import annotations

import os
import os.path as osp
from typing import Optional, Sequence

import numpy as np

from ..fileio.atomic import atomic_path
from ..structures.image import MedicalImage
from ..utils.exceptions import InvalidInputError

#: marker colours: template landmarks, matches, truth
COLOURS = dict(template='#39ff14', match='#ff3b30', truth='#00c8ff')


def _draw_image(ax, image: MedicalImage):
    """The image in world mm (axis-aligned 2D images), displayed between its 1st and 99th
    percentiles."""
    src = image.path or '<in-memory image>'
    if image.ndim != 2 or not np.allclose(np.abs(image.direction), np.eye(2), atol=1e-3):
        raise InvalidInputError(f'{src}: the radiograph figure needs an axis-aligned 2D image '
                                '(identity or flipped direction); resample an oblique one.')
    arr = np.asarray(image.array, dtype=np.float32)
    lo, hi = np.percentile(arr, [1, 99]) if arr.size else (0.0, 1.0)
    corners = image.index_to_world(np.array([[-0.5, -0.5], [image.size[0] - 0.5,
                                                            image.size[1] - 0.5]]))
    (x0, y0), (x1, y1) = corners
    ax.imshow(arr, cmap='gray', vmin=lo, vmax=hi if hi > lo else lo + 1,
              extent=(x0, x1, y1, y0), interpolation='bilinear')
    ax.set_xlim(min(x0, x1), max(x0, x1))
    ax.set_ylim(max(y0, y1), min(y0, y1))  # y downwards
    ax.set_xlabel('x (mm)', color='#bbbbbb', fontsize=8)
    ax.set_ylabel('y (mm)', color='#bbbbbb', fontsize=8)
    ax.tick_params(colors='#bbbbbb', labelsize=7)
    for sp in ax.spines.values():
        sp.set_color('#555555')


def plot_xray_matches(template: MedicalImage, template_points, target: MedicalImage,
                      matches, out_png, names: Optional[Sequence[str]] = None,
                      truth=None, scores=None, title: Optional[str] = None,
                      dpi: int = 110) -> str:
    """Save a PNG: the template with its landmarks (left), the target with the matches
    (right, numbered like the template), the true positions and match-to-truth lines with
    the error in mm where ``truth`` is given.

    Args:
        template, target: the 2D images.
        template_points: ``(N, 2)`` world mm of the query landmarks on the template.
        matches: ``(N, 2)`` world mm of their matches on the target.
        out_png: destination (written atomically).
        names: landmark names (listed with their numbers and errors).
        truth: optional ``(N, 2)`` world mm of the true target positions (NaN rows:
            unknown).
        scores: optional ``(N,)`` match similarities (listed).
        title: figure title.
        dpi: resolution.

    Returns:
        The absolute path of the PNG.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    q = np.asarray(template_points, dtype=np.float64).reshape(-1, 2)
    m = np.asarray(matches, dtype=np.float64).reshape(-1, 2)
    if len(q) != len(m):
        raise InvalidInputError(f'{len(q)} template points but {len(m)} matches.')
    n = len(q)
    names = [f'p{i}' for i in range(n)] if names is None else list(names)
    t = None if truth is None else np.asarray(truth, dtype=np.float64).reshape(-1, 2)
    err = None if t is None else np.linalg.norm(m - t, axis=1)
    fig = Figure(figsize=(14.0, 7.6), dpi=dpi, facecolor='black')
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(1, 3, width_ratios=(1, 1, 0.55), left=0.05, right=0.99,
                            top=0.88, bottom=0.08, wspace=0.22)
    ax_t, ax_g = fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[0, 1])
    for ax, image, role in ((ax_t, template, 'template'), (ax_g, target, 'target')):
        ax.set_facecolor('black')
        _draw_image(ax, image)
        label = osp.basename(image.path) if image.path else f'<{role}>'
        ax.set_title(f'{role}: {label}', color='white', fontsize=10)
    for i in range(n):
        ax_t.plot(*q[i], marker='+', ms=10, mew=1.8, color=COLOURS['template'])
        ax_t.annotate(str(i + 1), q[i], color=COLOURS['template'], fontsize=8,
                      xytext=(4, 4), textcoords='offset points')
        ax_g.plot(*m[i], marker='x', ms=8, mew=1.8, color=COLOURS['match'])
        ax_g.annotate(str(i + 1), m[i], color=COLOURS['match'], fontsize=8,
                      xytext=(4, 4), textcoords='offset points')
        if t is not None and np.all(np.isfinite(t[i])):
            ax_g.plot(*t[i], marker='o', ms=8, mfc='none', mew=1.4, color=COLOURS['truth'])
            ax_g.plot([m[i, 0], t[i, 0]], [m[i, 1], t[i, 1]], color='#ffd60a', lw=0.9)
    # legend and table
    ax_l = fig.add_subplot(grid[0, 2])
    ax_l.axis('off')
    lines = ['+ template landmark', 'x match'] + (['o truth, - error'] if t is not None else [])
    rows = []
    for i, name in enumerate(names):
        row = f'{i + 1:2d} {name[:18]:<18s}'
        if err is not None:
            row += f' {err[i]:6.1f} mm' if np.isfinite(err[i]) else '      - '
        if scores is not None:
            row += f'  s {float(scores[i]):.2f}'
        rows.append(row)
    if err is not None and np.any(np.isfinite(err)):
        fin = err[np.isfinite(err)]
        rows += ['', f'mean error {fin.mean():.1f} mm', f'median     {np.median(fin):.1f} mm',
                 f'max        {fin.max():.1f} mm']
    ax_l.text(0.0, 1.0, '\n'.join(lines), color='white', fontsize=9, va='top',
              family='monospace', transform=ax_l.transAxes)
    ax_l.text(0.0, 0.86, '\n'.join(rows), color='#dddddd', fontsize=8, va='top',
              family='monospace', transform=ax_l.transAxes)
    fig.suptitle(title or 'template landmarks -> matches on the target', color='white',
                 fontsize=13, y=0.97)
    out = osp.abspath(os.fspath(out_png))
    os.makedirs(osp.dirname(out), exist_ok=True)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format='png', facecolor=fig.get_facecolor(), dpi=dpi)
    return out
