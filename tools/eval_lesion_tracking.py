#!/usr/bin/env python
"""Evaluate lesion tracking on a DLT-layout annotation file (DeepLesion "DLS" benchmark).

Same command as ``mmanat-eval-lesion-tracking``
(code: :mod:`mmanat.cli.eval_lesion_tracking`); options:
``python tools/eval_lesion_tracking.py --help``.

Examples::

    python tools/eval_lesion_tracking.py --ann DLT/data/test.json --pred predictions.csv
    python tools/eval_lesion_tracking.py --ann results_in_dlt_layout.json --out metrics.json
"""
import sys

from mmanat.cli.eval_lesion_tracking import main

if __name__ == '__main__':
    sys.exit(main())
