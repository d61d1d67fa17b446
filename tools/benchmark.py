#!/usr/bin/env python
"""Run the mmanat benchmarks and write ``docs/en/notes/benchmarks.md`` (+ JSON).

Same command as ``mmanat-benchmark`` (code: :mod:`mmanat.cli.benchmark`); options:
``python tools/benchmark.py --help``.

Examples::

    python tools/benchmark.py --quick                       # baselines, < 10 min on 2 cores
    python tools/benchmark.py --only lesion_tracking deformation
    python tools/benchmark.py --config configs/sam/sam_r18-fpn3d_8xb6-20k_ct-2mm.py \\
        --checkpoint work_dirs/sam/iter_20000.pth --json work_dirs/bench.json
"""
import sys

from mmanat.cli.benchmark import main

if __name__ == '__main__':
    sys.exit(main())
