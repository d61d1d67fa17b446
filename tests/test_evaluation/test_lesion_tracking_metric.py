import numpy as np
import pytest

from mmanat.evaluation.metrics.lesion_tracking_metric import (LesionTrackingMetric,
                                                              lesion_tracking_metrics)

GT = np.zeros((4, 3))
# errors 3, 8, 12, 5 mm
PRED = np.array([[3.0, 0.0, 0.0], [0.0, 8.0, 0.0], [0.0, 0.0, 12.0], [3.0, 4.0, 0.0]])
RADIUS = np.array([5.0, 20.0, 15.0, 5.0])


def test_cpm_and_med_hand_computed():
    m = lesion_tracking_metrics(PRED, GT, RADIUS)
    # CPM@Radius: d/r < 1 -> 3/5 yes, 8/20 yes, 12/15 yes, 5/5 no (strict)
    assert m['cpm_radius'] == pytest.approx(0.75)
    # CPM@10mm: d <= min(r, 10) -> 3<=5 yes, 8<=10 yes, 12<=10 no, 5<=5 yes (inclusive)
    assert m['cpm_10mm'] == pytest.approx(0.75)
    assert m['med'] == pytest.approx(7.0)
    assert m['med_std'] == pytest.approx(np.std([3, 8, 12, 5]))
    assert m['med_x'] == pytest.approx(1.5)   # (3+0+0+3)/4
    assert m['med_y'] == pytest.approx(3.0)   # (0+8+0+4)/4
    assert m['med_z'] == pytest.approx(3.0)
    assert m['med_x_std'] == pytest.approx(1.5)
    assert 'box_acc' not in m


def test_box_accuracy_and_failures():
    lo = np.full((4, 3), -4.0)
    hi = np.full((4, 3), 4.0)
    pred = PRED.copy()
    pred[1] = np.nan
    m = lesion_tracking_metrics(pred, GT, RADIUS, lo, hi)
    # inside [-4, 4]^3: (3,0,0) yes, nan no, (0,0,12) no, (3,4,0) yes (border included)
    assert m['box_acc'] == pytest.approx(0.5)
    assert m['n_failed'] == 1
    assert m['cpm_radius'] == pytest.approx(0.5)
    assert m['med'] == pytest.approx((3 + 12 + 5) / 3)


def test_registered_metric():
    from mmanat.registry import METRICS
    metric = METRICS.build(dict(type='LesionTrackingMetric'))
    assert isinstance(metric, LesionTrackingMetric)
    metric.process(None, [dict(pred_center=p, gt_center=g, gt_radius=r)
                          for p, g, r in zip(PRED, GT, RADIUS)])
    res = metric.evaluate(4)
    assert res['lesion/cpm_radius'] == pytest.approx(0.75)
    assert res['lesion/med'] == pytest.approx(7.0)


def test_plain_10mm_hit_rate_ignores_lesion_size():
    # errors 3, 8, 12, 5, 9, 10 mm; radii 5, 20, 15, 5, 4, 30 mm
    pred = np.concatenate([PRED, [[9.0, 0.0, 0.0], [0.0, 6.0, 8.0]]])
    gt = np.zeros((6, 3))
    radius = np.concatenate([RADIUS, [4.0, 30.0]])
    m = lesion_tracking_metrics(pred, gt, radius)
    # hit@10mm: d <= 10 -> 3 yes, 8 yes, 12 no, 5 yes, 9 yes (radius 4 does not matter),
    # 10 yes (inclusive)
    assert m['hit_10mm'] == pytest.approx(5 / 6)
    # CPM@10mm caps the threshold at the radius: 9 > min(4, 10) is a miss there
    assert m['cpm_10mm'] == pytest.approx(4 / 6)
    assert m['hit_10mm'] >= m['cpm_10mm']
    # a failed prediction is a miss
    pred[0] = np.nan
    assert lesion_tracking_metrics(pred, gt, radius)['hit_10mm'] == pytest.approx(4 / 6)
    # the registered metric reports it under its prefix
    metric = LesionTrackingMetric()
    metric.process(None, [dict(pred_center=p, gt_center=g, gt_radius=r)
                          for p, g, r in zip(PRED, GT, RADIUS)])
    assert metric.evaluate(4)['lesion/hit_10mm'] == pytest.approx(0.75)


def test_cli_prints_hit_10mm():
    from mmanat.cli.eval_lesion_tracking import format_metrics
    m = lesion_tracking_metrics(PRED, GT, RADIUS, np.full((4, 3), -4.0), np.full((4, 3), 4.0))
    text = format_metrics(m)
    assert 'hit@10mm   : 0.7500' in text
    assert 'CPM@10mm   : 0.7500' in text
    assert text.index('CPM@10mm') < text.index('hit@10mm') < text.index('MED (mm)')
    assert 'inside box : 0.5000' in text


def test_eval_lesion_tracking_cli_reports_hit_10mm(tmp_path, capsys):
    import json

    from mmanat.cli.eval_lesion_tracking import main
    # one small lesion (radius 5 * 0.6 = 3 mm), centre error 10 voxels * 0.6 = 6 mm: a miss
    # for CPM@Radius and CPM@10mm (min(3, 10) mm), a hit for the plain 10 mm rate
    ann = {'0001': {
        'source': 'a_01.nii.gz', 'target': 'a_02.nii.gz',
        'source box': [10.0, 10.0, 1.0, 10.0, 10.0, 2.0],
        'target box': [95.0, 95.0, 8.0, 10.0, 10.0, 4.0],
        'source center': [15.0, 15.0, 2.0], 'target center': [100.0, 100.0, 10.0],
        'source spacing': [0.6, 0.6, 2.0], 'target spacing': [0.6, 0.6, 2.0],
        'target recist diameter': [10.0, 8.0],
        'predict target center': [110.0, 100.0, 10.0]}}
    path = tmp_path / 'test.json'
    path.write_text(json.dumps(ann))
    out = tmp_path / 'm.json'
    assert main(['--ann', str(path), '--out', str(out)]) == 0
    text = capsys.readouterr().out
    assert 'hit@10mm   : 1.0000' in text and 'CPM@10mm   : 0.0000' in text
    metrics = json.loads(out.read_text())['metrics']
    assert metrics['hit_10mm'] == pytest.approx(1.0)
    assert metrics['cpm_10mm'] == pytest.approx(0.0)
    assert metrics['cpm_radius'] == pytest.approx(0.0)
