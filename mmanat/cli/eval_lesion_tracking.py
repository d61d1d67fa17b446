"""Evaluate lesion tracking on a DLT-layout annotation file (DeepLesion "DLS" benchmark).

The annotation is the ``test.json`` of the Deep Lesion Tracker project
(https://github.com/JimmyCai91/DLT, ``data/test.json``) or any file in the same layout.
Predictions are target-lesion centres, either inside the annotation file itself
(``"predict target center"``, as DLT writes its results) or in a separate file:

* JSON: ``{"0001": {"predict target center": [x, y, z]}, ...}`` (voxels of the target image)
  or ``{"0001": {"predict target center mm": [x, y, z]}}`` (world LPS mm);
* CSV: ``id,x,y,z`` (voxels) or ``id,x_mm,y_mm,z_mm`` (world mm).

World-mm predictions need the target images' headers: ``--image-dir``.

``mmanat-eval-lesion-tracking`` (same as ``python tools/eval_lesion_tracking.py``). Examples::

    python tools/eval_lesion_tracking.py --ann DLT/data/test.json --pred predictions.csv
    python tools/eval_lesion_tracking.py --ann results_in_dlt_layout.json --out metrics.json

Prints CPM@Radius, CPM@10mm (within min(radius, 10 mm): the CPM@10mm of DLT and UAE),
hit@10mm (within 10 mm whatever the lesion size), MED (overall and per axis) and writes them
as JSON.
"""
import argparse
import json
import os.path as osp
import sys
from typing import Dict, Optional, Sequence

from .outputs import output_file
from .runner import command


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Evaluate lesion tracking (CPM, MED) on a '
                                     'DLT-layout test.json')
    parser.add_argument('--ann', required=True, help='DLT-layout annotation file (test.json)')
    parser.add_argument('--pred', help='predictions (.json or .csv); default: the "predict '
                        'target center" entries of --ann')
    parser.add_argument('--image-dir', help='folder of the target images (needed only for '
                        'predictions in world mm)')
    parser.add_argument('--out', type=output_file,
                        help='metrics JSON to write (default: next to --pred or '
                        '--ann, *_metrics.json)')
    return parser.parse_args(argv)


def format_metrics(m) -> str:
    """Human-readable lines of :func:`evaluate_dlt` output."""
    lines = [f'lesion pairs: {m["n"]} (missing predictions: {m.get("n_missing", 0)}, '
             f'failed: {m["n_failed"]})',
             f'CPM@Radius : {m["cpm_radius"]:.4f}',
             f'CPM@10mm   : {m["cpm_10mm"]:.4f}  (within min(radius, 10 mm))',
             f'MED (mm)   : {m["med"]:.2f} +- {m["med_std"]:.2f}']
    if 'hit_10mm' in m:
        lines.insert(3, f'hit@10mm   : {m["hit_10mm"]:.4f}  (within 10 mm, any lesion size)')
    for ax in 'xyz':
        lines.append(f'MED {ax} (mm) : {m[f"med_{ax}"]:.2f} +- {m[f"med_{ax}_std"]:.2f}')
    if 'box_acc' in m:
        lines.append(f'inside box : {m["box_acc"]:.4f}')
    return '\n'.join(lines)


@command
def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry of ``mmanat-eval-lesion-tracking``: parse, then :func:`evaluate_lesion_tracking`."""
    args = parse_args(argv)
    evaluate_lesion_tracking(args.ann, args.pred, image_dir=args.image_dir, out=args.out)
    return 0


def evaluate_lesion_tracking(ann: str, pred: Optional[str] = None, *,
                             image_dir: Optional[str] = None,
                             out: Optional[str] = None) -> Dict[str, float]:
    """Score lesion-tracking predictions on a DLT-layout annotation file; print and save.

    Args:
        ann (str): DLT-layout annotation file (``test.json``).
        pred (str, optional): predictions (.json or .csv); default: the ``"predict target
            center"`` entries of ``ann``.
        image_dir (str, optional): folder of the target images (for world-mm predictions).
        out (str, optional): metrics JSON (default: ``<pred or ann>_metrics.json``).

    Returns:
        dict: CPM@Radius, CPM@10mm, hit@10mm, MED (mm; overall and per axis), counts.

    Raises:
        InvalidInputError: unreadable files, or no predictions at all.
    """
    from mmanat.evaluation.dlt_format import (attach_predictions, evaluate_dlt,
                                              read_dlt_json, read_predictions)
    from mmanat.fileio.atomic import atomic_path
    from mmanat.utils.exceptions import InvalidInputError
    records = read_dlt_json(ann)
    if pred:
        for rec in records:
            rec.pred_center = None
        preds = read_predictions(pred)
        unknown = set(preds) - {r.key for r in records}
        if unknown:
            print(f'[warning] {len(unknown)} predictions have ids not in {ann}, e.g. '
                  f'{sorted(unknown)[:5]}; they are ignored.', file=sys.stderr)
        attach_predictions(records, preds, image_dir, src=pred)
    elif all(r.pred_center is None for r in records):
        raise InvalidInputError(
            f'{ann} holds no "predict target center" entries; give --pred.')
    metrics = evaluate_dlt(records)
    print(format_metrics(metrics))
    base = pred or ann
    out = out or osp.splitext(base)[0] + '_metrics.json'
    with atomic_path(out) as tmp:
        with open(tmp, 'w', encoding='utf-8') as f:
            json.dump({'annotation': osp.abspath(ann),
                       'predictions': osp.abspath(pred) if pred else None,
                       'metrics': metrics}, f, indent=1)
            f.write('\n')
    print(f'metrics written to {out}')
    return metrics

