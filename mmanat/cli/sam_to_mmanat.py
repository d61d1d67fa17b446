"""Convert a released SAM / UAE-S / UAE-M checkpoint (mmcv 1.x) into an mmanat checkpoint.

``mmanat-convert-sam`` (same as ``python tools/model_converters/sam_to_mmanat.py``)::

    python tools/model_converters/sam_to_mmanat.py SAM.pth checkpoints/sam_published.pth
    python tools/model_converters/sam_to_mmanat.py SAMv2_iter_20000.pth uae_s.pth --model uae_s

The output carries its mmanat config, so ``init_model(checkpoint=DST)`` and every tool's
``--checkpoint DST`` need nothing else. Every released tensor must be used and every parameter
of the mmanat network filled (exact shapes), otherwise nothing is written and the message names
the keys. Without ``--model`` the kind is read from the keys (a semantic head or not), the
config stored in the file and the file name.
"""
import argparse
import time
from typing import Optional, Sequence

from .runner import command

KINDS = ('sam', 'uae_s', 'uae_m')


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """The options of ``mmanat-convert-sam``."""
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('src', help='released checkpoint: SAM.pth, SAMv2_iter_20000.pth or '
                   'CrossSAM_iter_20000_ct_mr_inter_1.pth')
    p.add_argument('dst', help='output mmanat checkpoint (.pth), written atomically')
    p.add_argument('--model', choices=KINDS, default=None,
                   help='which released model SRC is (default: inferred from its keys, stored '
                   'config and file name)')
    return p.parse_args(argv)


@command
def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry of ``mmanat-convert-sam``: parse, convert, report."""
    from mmanat.apis.published import convert_published_checkpoint
    args = parse_args(argv)
    t0 = time.perf_counter()
    info = convert_published_checkpoint(args.src, args.dst, kind=args.model)
    print(f'{args.src} -> {info["dst"]}: released {info["kind"]} model, '
          f'{info["num_tensors"]} tensors, {info["num_parameters"]:,} parameters, config '
          f'{info["config"]} ({time.perf_counter() - t0:.1f} s)')
    return 0
