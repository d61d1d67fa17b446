#!/usr/bin/env python
"""Answer one query (template points) against many cached targets: a collection embedded by
``tools/embed.py``.

Same command as ``mmanat-query`` (code: :mod:`mmanat.cli.query`); options:
``python tools/query.py --help``.

Examples::

    python tools/embed.py data/cts/ --out-dir emb --index
    python tools/query.py --template emb/case001.emb.pt --points landmarks.csv \\
        --targets-dir emb --out found.csv
"""
import sys

from mmanat.cli.query import main

if __name__ == '__main__':
    sys.exit(main())
