#!/usr/bin/env python
"""UAE-S demo with stable-points structural inference: 125 neighbours, 4 forward/back
iterations, robust affine fit, mean vote.

Same command as ``mmanat-demo-semantic-stable-points`` (code: :mod:`mmanat.cli.demo`); options:
``python tools/demo_semantic_stable_points.py --help``.

Examples::

    python tools/demo_semantic_stable_points.py --checkpoint work_dirs/<config>/iter_20000.pth
    python tools/demo_semantic_stable_points.py --checkpoint K \
        --template A.nii.gz --target B.nii.gz \
        --point X Y Z --space RAS
    python tools/demo_semantic_stable_points.py --random-init \
        --config configs/_base_/models/sam_tiny.py  # pipeline only
"""
import sys

from mmanat.cli.demo import main_semantic_stable_points as main

if __name__ == '__main__':
    sys.exit(main())
