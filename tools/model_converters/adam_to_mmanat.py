#!/usr/bin/env python
"""Convert a released Adam v1 (ResNet-50) or Adam v2 (ConvNeXt-B) checkpoint into an mmanat
checkpoint.

Same command as ``mmanat-convert-adam`` (code: :mod:`mmanat.cli.adam_to_mmanat`); options:
``python tools/model_converters/adam_to_mmanat.py --help``.

Example::

    python tools/model_converters/adam_to_mmanat.py AdamV2.pth checkpoints/adam_v2_published.pth
"""
import sys

from mmanat.cli.adam_to_mmanat import main

if __name__ == '__main__':
    sys.exit(main())
