#!/usr/bin/env python
"""Convert a released SAM / UAE-S / UAE-M checkpoint (mmcv 1.x) into an mmanat checkpoint.

Same command as ``mmanat-convert-sam`` (code: :mod:`mmanat.cli.sam_to_mmanat`); options:
``python tools/model_converters/sam_to_mmanat.py --help``.

Example::

    python tools/model_converters/sam_to_mmanat.py SAM.pth checkpoints/sam_published.pth
"""
import sys

from mmanat.cli.sam_to_mmanat import main

if __name__ == '__main__':
    sys.exit(main())
