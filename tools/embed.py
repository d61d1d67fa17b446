#!/usr/bin/env python
"""Embed images once and cache the maps (fine, coarse[, semantic] + geometry + model identity)
for fast repeated matching with tools/match.py or mmanat.apis.load_embeddings.

Same command as ``mmanat-embed`` (code: :mod:`mmanat.cli.embed`); options:
``python tools/embed.py --help``.

Examples::

    python tools/embed.py data/my_cts/ --checkpoint K --out-dir outputs/embeddings
    python tools/embed.py a.nii.gz b.nrrd --checkpoint K --tile-size 96 192 192
    # split a large folder over 4 jobs (e.g. a cluster array): job i runs
    python tools/embed.py data/cts/ --checkpoint K --num-parts 4 --part-id $i
    # data-parallel on 8 GPUs of one node (each process takes every 8th file)
    torchrun --nproc_per_node 8 tools/embed.py data/cts/ --checkpoint K --launcher pytorch
"""
import sys

from mmanat.cli.embed import main

if __name__ == '__main__':
    sys.exit(main())
