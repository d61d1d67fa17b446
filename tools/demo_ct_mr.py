#!/usr/bin/env python
"""UAE-M demo: find a point of an MR in a CT (by default a landmark of a synthetic subject's
MR, found in the CT of the same subject; or --template MR --target CT --point X Y Z, any
modality pair).

Examples::

    python tools/demo_ct_mr.py            # shipped checkpoints/uae_m_default.pth
    python tools/demo_ct_mr.py --checkpoint work_dirs/<config>/iter_20000.pth
    python tools/demo_ct_mr.py --checkpoint K --template A.nii.gz --target B.nii.gz \
        --point X Y Z --space RAS
    python tools/demo_ct_mr.py --random-init --config configs/_base_/models/sam_tiny.py  # pipeline
"""
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if ROOT not in sys.path:  # allow running from a checkout without installation
    sys.path.insert(0, ROOT)

from mmanat.apis.demo import main  # noqa: E402

DESCRIPTION = __doc__.split('\n\n')[0].replace('\n', ' ')

if __name__ == '__main__':
    sys.exit(main(DESCRIPTION, kind='ct_mr', stable_points=False))
