#!/usr/bin/env python
"""Turn a training checkpoint into a small release checkpoint: model weights only (optionally
fp16), the config kept in ``meta['cfg']``, and print its SHA-256 for the model zoo.

Same command as ``mmanat-publish-checkpoint`` (code: :mod:`mmanat.cli.publish_checkpoint`); options:
``python tools/publish_checkpoint.py --help``.

Example::

    python tools/publish_checkpoint.py work_dirs/x/iter_20000.pth checkpoints/sam_default.pth \
        --fp16 --zoo --task sam \
        --config configs/sam/sam_tiny-fpn3d_1xb2-cpu-1000it_synthetic-ct-samples.py
"""
import sys

from mmanat.cli.publish_checkpoint import main

if __name__ == '__main__':
    sys.exit(main())
