#!/usr/bin/env python
"""Point-and-match in the browser: click a point in the template, see its match in every target.

Same command as ``mmanat-viewer`` (code: :mod:`mmanat.cli.viewer`); options:
``python tools/viewer.py --help``; guide: docs/en/user_guides/viewer.md.

Examples::

    python tools/viewer.py --template data/samples/ct/lung1.nrrd \\
        --target data/samples/ct/lung2.nrrd
    # print the URL instead of opening a browser; any free port
    python tools/viewer.py --template a.nii.gz --target b.nii.gz --no-browser --port 0
"""
import sys

from mmanat.cli.viewer import main

if __name__ == '__main__':
    sys.exit(main())
