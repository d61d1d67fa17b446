#!/usr/bin/env python
"""Evaluate a checkpoint through mmengine's test loop with the registered metrics
(LandmarkMetric: mean radial error in mm; LesionTrackingMetric: CPM and MED).

Same command as ``mmanat-test`` (code: :mod:`mmanat.cli.test`); options:
``python tools/test.py --help``.

Examples::

    python tools/test.py CONFIG checkpoints/sam_default.pth --out results.json
    tools/dist_test.sh CONFIG CHECKPOINT 8 --out results.json      # 8 GPUs (torchrun)
"""
import sys

from mmanat.cli.test import main

if __name__ == '__main__':
    sys.exit(main())
