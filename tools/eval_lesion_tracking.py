#!/usr/bin/env python
"""Evaluate lesion tracking on a DLT-layout annotation file (DeepLesion "DLS" benchmark).

The annotation is the ``test.json`` of the Deep Lesion Tracker project
(https://github.com/JimmyCai91/DLT, ``data/test.json``) or any file in the same layout.
Predictions are target-lesion centres, either inside the annotation file itself
(``"predict target center"``, as DLT writes its results) or in a separate file:

* JSON: ``{"0001": {"predict target center": [x, y, z]}, ...}`` (voxels of the target image)
  or ``{"0001": {"predict target center mm": [x, y, z]}}`` (world LPS mm);
* CSV: ``id,x,y,z`` (voxels) or ``id,x_mm,y_mm,z_mm`` (world mm).

World-mm predictions need the target images' headers: ``--image-dir``.

Examples::

    python tools/eval_lesion_tracking.py --ann DLT/data/test.json --pred predictions.csv
    python tools/eval_lesion_tracking.py --ann results_in_dlt_layout.json --out metrics.json

Prints CPM@Radius, CPM@10mm, MED (overall and per axis) and writes them as JSON.
"""
import argparse
import json
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if ROOT not in sys.path:  # allow running from a checkout without installation
    sys.path.insert(0, ROOT)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Evaluate lesion tracking (CPM, MED) on a '
                                     'DLT-layout test.json')
    parser.add_argument('--ann', required=True, help='DLT-layout annotation file (test.json)')
    parser.add_argument('--pred', help='predictions (.json or .csv); default: the "predict '
                        'target center" entries of --ann')
    parser.add_argument('--image-dir', help='folder of the target images (needed only for '
                        'predictions in world mm)')
    parser.add_argument('--out', help='metrics JSON to write (default: next to --pred or '
                        '--ann, *_metrics.json)')
    return parser.parse_args(argv)


def format_metrics(m) -> str:
    """Human-readable lines of :func:`evaluate_dlt` output."""
    lines = [f'lesion pairs: {m["n"]} (missing predictions: {m.get("n_missing", 0)}, '
             f'failed: {m["n_failed"]})',
             f'CPM@Radius : {m["cpm_radius"]:.4f}',
             f'CPM@10mm   : {m["cpm_10mm"]:.4f}',
             f'MED (mm)   : {m["med"]:.2f} +- {m["med_std"]:.2f}']
    for ax in 'xyz':
        lines.append(f'MED {ax} (mm) : {m[f"med_{ax}"]:.2f} +- {m[f"med_{ax}_std"]:.2f}')
    if 'box_acc' in m:
        lines.append(f'inside box : {m["box_acc"]:.4f}')
    return '\n'.join(lines)


def main(argv=None):
    args = parse_args(argv)
    from mmanat.evaluation.dlt_format import (attach_predictions, evaluate_dlt,
                                              read_dlt_json, read_predictions)
    from mmanat.fileio.atomic import atomic_path
    from mmanat.utils.exceptions import InvalidInputError
    try:
        records = read_dlt_json(args.ann)
        if args.pred:
            for rec in records:
                rec.pred_center = None
            preds = read_predictions(args.pred)
            unknown = set(preds) - {r.key for r in records}
            if unknown:
                print(f'[warning] {len(unknown)} predictions have ids not in {args.ann}, e.g. '
                      f'{sorted(unknown)[:5]}; they are ignored.', file=sys.stderr)
            attach_predictions(records, preds, args.image_dir, src=args.pred)
        elif all(r.pred_center is None for r in records):
            raise InvalidInputError(
                f'{args.ann} holds no "predict target center" entries; give --pred.')
        metrics = evaluate_dlt(records)
    except InvalidInputError as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    print(format_metrics(metrics))
    base = args.pred or args.ann
    out = args.out or osp.splitext(base)[0] + '_metrics.json'
    with atomic_path(out) as tmp:
        with open(tmp, 'w', encoding='utf-8') as f:
            json.dump({'annotation': osp.abspath(args.ann),
                       'predictions': osp.abspath(args.pred) if args.pred else None,
                       'metrics': metrics}, f, indent=1)
            f.write('\n')
    print(f'metrics written to {out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
