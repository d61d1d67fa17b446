#!/usr/bin/env python
"""UAE-M demo: find a point of an MR in a CT (by default a landmark of a synthetic subject's
MR, found in the CT of the same subject; or --template MR --target CT --point X Y Z, any
modality pair).

Same command as ``mmanat-demo-ct-mr`` (code: :mod:`mmanat.cli.demo`); options:
``python tools/demo_ct_mr.py --help``.

Examples::

    python tools/demo_ct_mr.py            # shipped checkpoints/uae_m_default.pth
    python tools/demo_ct_mr.py --checkpoint work_dirs/<config>/iter_20000.pth
    python tools/demo_ct_mr.py --checkpoint K --template A.nii.gz --target B.nii.gz \
        --point X Y Z --space RAS
    python tools/demo_ct_mr.py --random-init --config configs/_base_/models/sam_tiny.py  # pipeline
"""
import sys

from mmanat.cli.demo import main_ct_mr as main

if __name__ == '__main__':
    sys.exit(main())
