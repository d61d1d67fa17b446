#!/usr/bin/env python
"""Carry a label map, a point set or mesh vertices from a template image to a target image
through dense anatomical-embedding matches and a regularising fit.

Same command as ``mmanat-propagate`` (code: :mod:`mmanat.cli.propagate`); options:
``python tools/propagate.py --help``.

Examples::

    python tools/propagate.py --template ct_a.nii.gz --labels organs_a.nii.gz \\
        --target ct_b.nii.gz --out organs_b.nii.gz
    python tools/propagate.py --template emb/a.emb.pt --target emb/b.emb.pt \\
        --points a.csv --out-points b.csv --mesh liver_a.obj --out-mesh liver_b.obj
"""
import sys

from mmanat.cli.propagate import main

if __name__ == '__main__':
    sys.exit(main())
