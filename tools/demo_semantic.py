#!/usr/bin/env python
"""UAE-S demo: match with fine + coarse + semantic embeddings on the sample data by
default; prints the match and stage times, saves a three-plane PNG.

Same command as ``mmanat-demo-semantic`` (code: :mod:`mmanat.cli.demo`); options:
``python tools/demo_semantic.py --help``.

Examples::

    python tools/demo_semantic.py --checkpoint work_dirs/<config>/iter_20000.pth
    python tools/demo_semantic.py --checkpoint K \
        --template A.nii.gz --target B.nii.gz \
        --point X Y Z --space RAS
    python tools/demo_semantic.py --random-init \
        --config configs/_base_/models/sam_tiny.py  # pipeline only
"""
import sys

from mmanat.cli.demo import main_semantic as main

if __name__ == '__main__':
    sys.exit(main())
