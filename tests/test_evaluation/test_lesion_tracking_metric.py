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
