#!/usr/bin/env python
"""Write synthetic torso subjects (CT, MR, X-ray, label maps, landmarks) to a folder.

Same command as ``mmanat-make-synthetic`` (code: :mod:`mmanat.cli.make_synthetic`); options:
``python tools/make_synthetic_data.py --help``.

Example::

    python tools/make_synthetic_data.py --num 20 --out data/synthetic --seed 0 \
        --modalities ct mr xray --workers 2
"""
import sys

from mmanat.cli.make_synthetic import main

if __name__ == '__main__':
    sys.exit(main())
