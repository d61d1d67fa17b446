#!/usr/bin/env python
"""Find template points in one or more target images (SAM/UAE embedding matching).

Same command as ``mmanat-match`` (code: :mod:`mmanat.cli.match`); options:
``python tools/match.py --help``.

Examples::

    python tools/match.py --config configs/sam/sam_r18-fpn3d_8xb6-20k_ct-2mm.py --checkpoint K \\
        --template ct_a.nii.gz --points landmarks.csv --target ct_b.nii.gz --out found.csv
    # several targets: one output file per target, OUT's name + "_" + the target's name
    python tools/match.py --checkpoint K --template a.nrrd --points p.mrk.json \\
        --target b.nrrd --target c.nrrd --out found.mrk.json      # found_b / found_c
    # images embedded once with tools/embed.py: no model needed
    python tools/match.py --template emb/a.emb.pt --points p.csv --target emb/b.emb.pt \\
        --out found.csv
    # 2D radiographs with the 2D SAM: name,x,y (world mm) or name,column,row (pixels) points
    python tools/match.py --checkpoint checkpoints/sam2d_default.pth --template a.dcm \\
        --points a_px.csv --target b.dcm --out found.csv --pixel
"""
import sys

from mmanat.cli.match import main

if __name__ == '__main__':
    sys.exit(main())
