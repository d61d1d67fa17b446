"""Figure of named landmarks of a volume: a coronal and a sagittal overview with every point,
then one axial close-up per landmark (its slice, ``crop_mm`` wide, the point marked).

For axial volumes with identity direction (the layout of the sample chest CTs): the axial
close-ups are the stored slices; the coronal / sagittal overviews are the array planes through
the mean landmark position, shown with the physical aspect ratio. Radiological layout as in
:mod:`.match_figure`: patient right on the image left, anterior at the top (axial), superior at
the top (coronal, sagittal).
"""
from __future__ import annotations

import os
import os.path as osp
from typing import Optional, Sequence

import numpy as np

from ..fileio.atomic import atomic_path
from ..structures.image import MedicalImage
from ..structures.points import PointSet
from ..utils.exceptions import InvalidInputError


def plot_landmarks(image: MedicalImage, points: PointSet, out_path: str,
                   title: Optional[str] = None, crop_mm: float = 110.0,
                   window: Sequence[float] = (-1000.0, 600.0), columns: int = 4) -> str:
    """Write a PNG with every landmark of ``points`` marked and named on ``image``.

    Args:
        image: a 3D volume with identity direction.
        points: named world points (LPS mm).
        out_path: the PNG to write (folders are created).
        title: figure title (default: the image file name).
        crop_mm: width of each axial close-up (mm).
        window: display range (HU) ``(min, max)``.
        columns: panels per row.

    Returns:
        The absolute path written.

    Raises:
        InvalidInputError: a 2D image, an oblique one, or points outside the image.
    """
    import matplotlib
    matplotlib.use('Agg', force=False)
    import matplotlib.pyplot as plt
    src = image.path or '<in-memory image>'
    if image.ndim != 3 or not np.allclose(image.direction, np.eye(3), atol=1e-3):
        raise InvalidInputError(f'{src}: plot_landmarks needs a 3D volume with identity '
                                'direction (resample an oblique one first).')
    zyx = image.world_to_array_index(points.xyz)
    if not np.all(image.contains_world(points.xyz)):
        raise InvalidInputError(f'{src}: some landmarks lie outside the image.')
    arr = image.array
    sx, sy, sz = image.spacing
    nz, ny, nx = arr.shape
    vmin, vmax = window
    n = len(points.names)
    rows = int(np.ceil((n + 2) / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(3.6 * columns, 3.8 * rows))
    axes = np.atleast_1d(axes).ravel()
    for ax in axes:
        ax.axis('off')
    # overviews: extent in mm, superior at the top
    ext_cor = [0, nx * sx, 0, nz * sz]
    ext_sag = [0, ny * sy, 0, nz * sz]
    y0 = int(round(np.mean(zyx[:, 1])))
    x0 = int(round(np.median(zyx[:, 2])))
    axes[0].imshow(arr[:, y0, :], cmap='gray', vmin=vmin, vmax=vmax, origin='lower',
                   extent=ext_cor)
    axes[0].set_title(f'coronal, y index {y0}', fontsize=9)
    axes[1].imshow(arr[:, :, x0], cmap='gray', vmin=vmin, vmax=vmax, origin='lower',
                   extent=ext_sag)
    axes[1].set_title(f'sagittal, x index {x0}', fontsize=9)
    for i, name in enumerate(points.names):
        z, y, x = zyx[i]
        axes[0].plot((x + 0.5) * sx, (z + 0.5) * sz, 'r+', ms=9, mew=1.5)
        axes[0].annotate(str(i + 1), ((x + 0.5) * sx, (z + 0.5) * sz), color='yellow',
                         fontsize=8, xytext=(3, 3), textcoords='offset points')
        axes[1].plot((y + 0.5) * sy, (z + 0.5) * sz, 'r+', ms=9, mew=1.5)
        axes[1].annotate(str(i + 1), ((y + 0.5) * sy, (z + 0.5) * sz), color='yellow',
                         fontsize=8, xytext=(3, 3), textcoords='offset points')
        ax = axes[i + 2]
        zi = int(np.clip(round(z), 0, nz - 1))
        hx, hy = crop_mm / 2 / sx, crop_mm / 2 / sy
        xa, xb = int(max(x - hx, 0)), int(min(x + hx, nx))
        ya, yb = int(max(y - hy, 0)), int(min(y + hy, ny))
        ax.imshow(arr[zi, ya:yb, xa:xb], cmap='gray', vmin=vmin, vmax=vmax,
                  extent=[xa * sx, xb * sx, yb * sy, ya * sy])
        ax.plot((x + 0.5) * sx, (y + 0.5) * sy, 'r+', ms=14, mew=2)
        w = points.xyz[i]
        ax.set_title(f'{i + 1}. {name}\nslice {zi} (x, y, z = {w[0]:.0f}, {w[1]:.0f}, '
                     f'{w[2]:.0f} mm)', fontsize=8)
    fig.suptitle(title or osp.basename(src), fontsize=11)
    fig.tight_layout()
    out_path = osp.abspath(os.fspath(out_path))
    os.makedirs(osp.dirname(out_path), exist_ok=True)
    with atomic_path(out_path) as tmp:
        fig.savefig(tmp, dpi=80, format='png')
    plt.close(fig)
    return out_path
