#!/usr/bin/env python
"""UAE-M iterative recipe end to end on synthetic CT/MR pairs, with its evaluation.

Same command as ``mmanat-uae-m-recipe`` (code: :mod:`mmanat.cli.uae_m_recipe`); options:
``python tools/uae_m_recipe.py --help``.
"""
import sys

from mmanat.cli.uae_m_recipe import main

if __name__ == '__main__':
    sys.exit(main())
