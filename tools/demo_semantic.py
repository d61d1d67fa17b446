#!/usr/bin/env python
"""UAE-S demo: match with fine + coarse + semantic embeddings (SPEC 2) on the sample data by
default; prints the match and stage times, saves a three-plane PNG.

Examples::

    python tools/demo_semantic.py --checkpoint work_dirs/<config>/iter_20000.pth
    python tools/demo_semantic.py --checkpoint K \
        --template A.nii.gz --target B.nii.gz \
        --point X Y Z --space RAS
    python tools/demo_semantic.py --random-init \
        --config configs/_base_/models/sam_tiny.py  # pipeline only
"""
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if ROOT not in sys.path:  # allow running from a checkout without installation
    sys.path.insert(0, ROOT)

from mmanat.apis.demo import main  # noqa: E402

DESCRIPTION = __doc__.split('\n\n')[0].replace('\n', ' ')

if __name__ == '__main__':
    sys.exit(main(DESCRIPTION, kind='semantic', stable_points=False))
