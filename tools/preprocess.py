#!/usr/bin/env python
"""Build a training-ready cache of CT/MR volumes for SAM (resampling, body crop).

Same command as ``mmanat-preprocess`` (code: :mod:`mmanat.cli.preprocess`); options:
``python tools/preprocess.py --help``.

Usage::

    python tools/preprocess.py INPUT --out DIR [--spacing 2.0] [--workers N]
        [--modality CT|MR] [--no-body-crop] [--mask-body] [--overwrite]
"""
import sys

from mmanat.cli.preprocess import main

if __name__ == '__main__':
    sys.exit(main())
