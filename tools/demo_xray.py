#!/usr/bin/env python
"""Find the landmarks of a template chest X-ray in a target X-ray with the 2D SAM (two
synthetic subjects by default): prints every match and the mean error, saves a figure.

Same command as ``mmanat-demo-xray`` (code: :mod:`mmanat.cli.demo_xray`); options:
``python tools/demo_xray.py --help``.

Examples::

    python tools/demo_xray.py                      # shipped 2D SAM, synthetic subjects 0 -> 1
    python tools/demo_xray.py --checkpoint K --template a.dcm --template-points a.csv \
        --target b.dcm --target-points b.csv
    python tools/demo_xray.py --random-init --config configs/_base_/models/sam2d_tiny.py
"""
import sys

from mmanat.cli.demo_xray import main

if __name__ == '__main__':
    sys.exit(main())
