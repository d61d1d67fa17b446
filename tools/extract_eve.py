#!/usr/bin/env python
"""Eve embeddings (Adam) of whole radiographs, or of square patches around points.

Same command as ``mmanat-extract-eve`` (code: :mod:`mmanat.cli.extract_eve`); options:
``python tools/extract_eve.py --help``.

Examples::

    python tools/extract_eve.py \\
        --config configs/adam/adam_r18half-mlp_1xb32-cpu-350it_synthetic-cxr-64px.py \\
        --checkpoint adam.pth a.png b.dcm --out eve.npz
    python tools/extract_eve.py --config C --checkpoint K a.png --points pts.csv \\
        --patch-size 32 --out eve_patches.npz
    python tools/extract_eve.py --config C --random-init a.png --out baseline.npz
"""
import sys

from mmanat.cli.extract_eve import main

if __name__ == '__main__':
    sys.exit(main())
