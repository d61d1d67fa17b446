#!/usr/bin/env python
"""Register a moving image to a fixed image from anatomical-embedding matches (UAE-M).

Same command as ``mmanat-register`` (code: :mod:`mmanat.cli.register`); options:
``python tools/register.py --help``.

Examples::

    python tools/register.py --config configs/sam/uae_m.py --checkpoint K \\
        --moving mr.nii.gz --fixed ct.nii.gz --out-dir reg_mr_to_ct
    python tools/register.py --checkpoint K --moving a.nrrd --fixed b.nrrd --out-dir out \\
        --no-deformable --grid-spacing 32 32 24 --score-threshold 0.6
"""
import sys

from mmanat.cli.register import main

if __name__ == '__main__':
    sys.exit(main())
