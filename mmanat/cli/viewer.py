"""Point-and-match in the browser: click a point in the template, see its match in every target.

``mmanat-viewer`` (same as ``python tools/viewer.py``). Examples::

    mmanat-viewer --template data/samples/ct/lung1.nrrd --target data/samples/ct/lung2.nrrd
    # several targets, another model, a fixed port, no browser window (print the URL only)
    mmanat-viewer --template a.nii.gz --target b.nii.gz --target c.nii.gz \\
        --checkpoint K --port 8800 --no-browser
    # radiographs, with the shipped 2D SAM
    mmanat-viewer --template cxr_a.dcm --target cxr_b.dcm

The images are embedded once (progress in the terminal and in the page) and the embeddings
kept in ``--cache-dir`` (``.emb.pt`` files, reused by the next start with the same image, model
and spacing). The page shows the template and the targets side by side with NiiVue (axial,
coronal, sagittal; window presets; zoom), matches each click in every target, keeps a list of
points and loads / saves it as 3D Slicer ``.mrk.json`` / ``.fcsv`` or CSV in world mm (LPS, or
RAS). The server listens on 127.0.0.1 only unless ``--host`` says otherwise and serves only the
images it was started with. User guide: docs/en/user_guides/viewer.md.
"""
import argparse
import os.path as osp
import sys
from typing import Optional, Sequence

from .runner import checkout_root, command

DEFAULT_PORT = 8765
LOOPBACK = ('127.0.0.1', 'localhost', '::1')


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """The options of ``mmanat-viewer``."""
    p = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0].replace('\n', ' '),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--template', required=True, help='template image (volume or radiograph)')
    p.add_argument('--target', required=True, action='append',
                   help='target image; repeat for several targets')
    p.add_argument('--checkpoint', help='model checkpoint; default: the shipped SAM, '
                   'checkpoints/sam_default.pth (2D images: checkpoints/sam2d_default.pth)')
    p.add_argument('--config', help='model config (default: the one stored in the checkpoint)')
    p.add_argument('--port', type=int, default=DEFAULT_PORT,
                   help=f'TCP port (default {DEFAULT_PORT}; 0: any free port)')
    p.add_argument('--host', default='127.0.0.1',
                   help='address to listen on (default 127.0.0.1: this computer only)')
    p.add_argument('--no-browser', action='store_true',
                   help='do not open a browser; print the URL only')
    p.add_argument('--cache-dir', default=None,
                   help='folder of the embedding caches (default work_dirs/viewer_cache of '
                   'the checkout)')
    p.add_argument('--spacing', type=float, default=None,
                   help='network-input spacing in mm (default: the model\'s, 2 mm); 4 embeds '
                   'about eight times faster, less precisely')
    p.add_argument('--method', default='reference',
                   choices=['reference', 'coarse_to_fine', 'consensus'],
                   help='matching method of a click (default reference: argmax over the '
                   'target, tens of ms; consensus: seconds per click on a CPU)')
    p.add_argument('--modality', choices=['CT', 'MR', 'XR'], default=None,
                   help='modality of the images when their files do not say')
    p.add_argument('--tile-size', type=int, nargs='+', default=None,
                   help='tiled embedding window (z y x voxels at the input spacing)')
    p.add_argument('--device', default='cpu', help='cpu, cuda, cuda:1 (default cpu)')
    p.add_argument('--max-request-mb', type=float, default=4.0,
                   help='largest request the server accepts (default 4 MB)')
    return p.parse_args(argv)


def default_checkpoint(planar: bool) -> str:
    """The shipped checkpoint for volumes (SAM) or 2D images (2D SAM)."""
    from .match import shipped_checkpoint
    return shipped_checkpoint(planar)


@command
def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry of ``mmanat-viewer``: embed, then serve until Ctrl-C."""
    args = parse_args(argv)
    run_viewer(args.template, args.target, checkpoint=args.checkpoint, config=args.config,
               host=args.host, port=args.port, open_browser=not args.no_browser,
               cache_dir=args.cache_dir, spacing=args.spacing, method=args.method,
               modality=args.modality, tile_size=args.tile_size, device=args.device,
               max_request_mb=args.max_request_mb)
    return 0


def run_viewer(template: str, targets: Sequence[str], *, checkpoint: Optional[str] = None,
               config: Optional[str] = None, host: str = '127.0.0.1',
               port: int = DEFAULT_PORT, open_browser: bool = True,
               cache_dir: Optional[str] = None, spacing: Optional[float] = None,
               method: str = 'reference', modality: Optional[str] = None,
               tile_size: Optional[Sequence[int]] = None, device: str = 'cpu',
               max_request_mb: float = 4.0) -> None:
    """Read the images, start embedding them in the background and serve the page.

    Args:
        template: the template image.
        targets: the target images.
        checkpoint: model checkpoint (default: the shipped one for the images' dimension).
        config: model config (default: the checkpoint's).
        host: address to listen on (127.0.0.1 by default).
        port: TCP port (0: any free port).
        open_browser: open the page in the default browser.
        cache_dir: folder of the ``.emb.pt`` caches (default work_dirs/viewer_cache).
        spacing: network-input spacing in mm.
        method: matching method of a click.
        modality: modality when the files do not say.
        tile_size: tiled embedding window.
        device: torch device.
        max_request_mb: largest request body accepted.

    Raises:
        InvalidInputError: missing images or checkpoint, NiiVue not installed, a busy port.
    """
    from mmanat.structures import is_planar
    from mmanat.utils.exceptions import InvalidInputError
    from mmanat.viewer import ViewerSession, niivue_installed, serve
    if not niivue_installed():
        raise InvalidInputError(
            'the viewer page needs NiiVue, which is not installed: run `bash '
            'tools/setup_env.sh` (it runs `npm ci` in mmanat/viewer/frontend; Node.js and npm '
            'are needed once).')
    if max_request_mb <= 0:
        raise InvalidInputError(f'--max-request-mb {max_request_mb}: must be > 0.')
    cache_dir = cache_dir or osp.join(checkout_root(), 'work_dirs', 'viewer_cache')
    if checkpoint is None:
        from mmanat.fileio import read_image
        if not osp.isfile(template):
            raise InvalidInputError(f'{template}: file not found; check the path.')
        checkpoint = default_checkpoint(is_planar(read_image(template, modality=modality)))
        print(f'[viewer] no --checkpoint: using the shipped {checkpoint}')
    session = ViewerSession(template, targets, checkpoint, config=config, cache_dir=cache_dir,
                            spacing=spacing, method=method, device=device, modality=modality,
                            tile_size=tile_size)
    if host not in LOOPBACK:
        print(f'[viewer] warning: listening on {host}: anyone who can reach this address can '
              'see these images and use the model.', file=sys.stderr)
    session.start()
    serve(session, host=host, port=port, open_browser=open_browser,
          max_body_bytes=int(max_request_mb * 2**20))
