"""Convert a released Adam v1 (ResNet-50 MoCo) or Adam v2 (ConvNeXt-B, DINO-style)
checkpoint into an mmanat checkpoint.

``mmanat-convert-adam`` (same as ``python tools/model_converters/adam_to_mmanat.py``)::

    python tools/model_converters/adam_to_mmanat.py Adam_v1.pth checkpoints/adam_v1_published.pth
    python tools/model_converters/adam_to_mmanat.py AdamV2_convnext_b.pth adam_v2.pth --version v2

The output carries its mmanat config (configs/adam/adam_r50-mlp_8xb32-3x200e_cxr14.py for v1,
configs/adam/adamv2_convnext-b-dino_8xb32-3x200e_cxr14.py for v2), so
``tools/extract_eve.py --checkpoint DST`` and the radiograph classifier's ``pretrained=DST``
need nothing else. The key layouts assumed are listed in :mod:`mmanat.apis.published_adam`.
"""
import argparse
import time
from typing import Optional, Sequence

from .runner import command


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """The options of ``mmanat-convert-adam``."""
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0].replace('\n', ' '))
    p.add_argument('src', help='released Adam checkpoint (.pth)')
    p.add_argument('dst', help='output mmanat checkpoint (.pth), written atomically')
    p.add_argument('--version', choices=('v1', 'v2'), default=None,
                   help='Adam version of SRC (default: read from its keys)')
    p.add_argument('--config', default=None, help='mmanat config to fill (default: the '
                   'reference config of the version)')
    p.add_argument('--network', choices=('teacher', 'student'), default='teacher',
                   help='v2: which network of the DINO-style file becomes the Eve backbone')
    return p.parse_args(argv)


@command
def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry of ``mmanat-convert-adam``: parse, convert, report."""
    from mmanat.apis.published_adam import convert_adam_checkpoint
    args = parse_args(argv)
    t0 = time.perf_counter()
    info = convert_adam_checkpoint(args.src, args.dst, version=args.version,
                                   config=args.config, which=args.network)
    kept = ', '.join(info['random_init']) or 'none'
    print(f'{args.src} -> {info["dst"]}: Adam {info["version"]}, {info["num_tensors"]} '
          f'tensors, {info["num_parameters"]:,} parameters, config {info["config"]}; '
          f'randomly initialised parts: {kept} ({time.perf_counter() - t0:.1f} s)')
    return 0
