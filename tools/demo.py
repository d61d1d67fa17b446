#!/usr/bin/env python
"""Find a point of one CT in another with SAM embeddings (sample data by default): prints the
match, its score and the time of every stage, saves a three-plane PNG.

Same command as ``mmanat-demo`` (code: :mod:`mmanat.cli.demo`); options:
``python tools/demo.py --help``.

Examples::

    python tools/demo.py --checkpoint work_dirs/<config>/iter_20000.pth
    python tools/demo.py --checkpoint K --template A.nii.gz --target B.nii.gz \
        --point X Y Z --space RAS
    python tools/demo.py --random-init --config configs/_base_/models/sam_tiny.py  # pipeline
"""
import sys

from mmanat.cli.demo import main

if __name__ == '__main__':
    sys.exit(main())
