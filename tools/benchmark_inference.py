#!/usr/bin/env python
"""Inference benchmark on one real CT: embedding time and peak memory, matching time for 1,
1,000 and 100,000 points, reference search vs coarse-to-fine side by side (speed ratio, how
often and how far their answers differ, error on a self-match and on a known shift).

Same command as ``mmanat-benchmark-inference``
(code: :mod:`mmanat.cli.benchmark_inference`); options:
``python tools/benchmark_inference.py --help``.

Examples::

    python tools/benchmark_inference.py \\
        --checkpoint work_dirs/sam_r18-fpn3d_8xb6-20k_ct-2mm/iter_20000.pth
    python tools/benchmark_inference.py --config configs/_base_/models/sam_tiny.py  # random
    python tools/benchmark_inference.py --device cuda --max-reference-points 0
"""
import sys

from mmanat.cli.benchmark_inference import main

if __name__ == '__main__':
    sys.exit(main())
