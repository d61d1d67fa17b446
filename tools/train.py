#!/usr/bin/env python
"""Train an mmanat model with the mmengine Runner.

Same command as ``mmanat-train`` (code: :mod:`mmanat.cli.train`); options:
``python tools/train.py --help``.

Examples::

    python tools/train.py configs/sam/sam_tiny-fpn3d_1xb2-cpu-300it_synthetic-ct.py  # one CPU/GPU
    python tools/train.py CONFIG --resume                                  # resume the latest
    python tools/train.py CONFIG --resume work_dirs/x/iter_2000.pth        # resume this one
    tools/dist_train.sh configs/sam/uae_s.py 8                             # 8 GPUs (torchrun)
"""
import sys

from mmanat.cli.train import main

if __name__ == '__main__':
    sys.exit(main())
