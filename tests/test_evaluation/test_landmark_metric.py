import numpy as np
import pytest

from mmanat.evaluation.metrics.landmark_metric import (LandmarkMetric, landmark_summary,
                                                       radial_errors, summarize_errors)
from mmanat.utils.exceptions import InvalidInputError

GT = np.array([[0.0, 0.0, 0.0], [10.0, 0.0, 0.0], [0.0, 5.0, 5.0], [1.0, 1.0, 1.0]])
# displacements: (3,4,0) -> 5; (0,0,12) -> 12; (1,0,0) -> 1; (0,6,8) -> 10
DISP = np.array([[3.0, 4.0, 0.0], [0.0, 0.0, 12.0], [1.0, 0.0, 0.0], [0.0, 6.0, 8.0]])


def test_radial_errors_hand_computed():
    np.testing.assert_allclose(radial_errors(GT + DISP, GT), [5.0, 12.0, 1.0, 10.0])


def test_summary_matches_hand_values():
    s = landmark_summary(GT + DISP, GT)
    assert s['n'] == 4 and s['n_failed'] == 0
    assert s['mre'] == pytest.approx(7.0)                       # (5+12+1+10)/4
    assert s['median'] == pytest.approx(7.5)                    # (5+10)/2
    assert s['std'] == pytest.approx(np.sqrt((4 + 25 + 36 + 9) / 4))
    assert s['p90'] == pytest.approx(10 + 0.7 * 2)              # linear interpolation
    assert s['max'] == pytest.approx(12.0)
    assert s['within_5mm'] == pytest.approx(0.5)                # 5 (inclusive) and 1
    assert s['within_10mm'] == pytest.approx(0.75)
    assert s['mae_x'] == pytest.approx(1.0)                     # (3+0+1+0)/4
    assert s['mae_y'] == pytest.approx(2.5)                     # (4+0+0+6)/4
    assert s['mae_z'] == pytest.approx(5.0)                     # (0+12+0+8)/4


def test_failed_prediction_counts_as_miss():
    pred = GT + DISP
    pred[1] = np.nan
    s = landmark_summary(pred, GT)
    assert s['n'] == 4 and s['n_failed'] == 1
    assert s['mre'] == pytest.approx((5 + 1 + 10) / 3)
    assert s['within_10mm'] == pytest.approx(0.75)
    assert s['within_5mm'] == pytest.approx(0.5)


def test_radial_input_and_errors():
    s = summarize_errors([2.0, 4.0])
    assert s['mre'] == pytest.approx(3.0) and 'mae_x' not in s
    with pytest.raises(InvalidInputError):
        radial_errors(np.zeros((3, 3)), np.zeros((2, 3)))
    with pytest.raises(InvalidInputError):
        summarize_errors(np.zeros((2, 2, 2)))
    assert np.isnan(summarize_errors([])['mre'])


def test_registered_metric_from_config():
    from mmanat.registry import METRICS
    metric = METRICS.build(dict(type='LandmarkMetric'))
    assert isinstance(metric, LandmarkMetric)
    metric.process(None, [dict(pred_points=GT[:2] + DISP[:2], gt_points=GT[:2]),
                          dict(pred_points=GT[2:] + DISP[2:], gt_points=GT[2:],
                               valid=[True, False])])
    out = metric.compute_metrics(metric.results)
    assert out['n'] == 3
    assert out['mre'] == pytest.approx((5 + 12 + 1) / 3)
    # evaluate() adds the prefix
    metric.results.clear()
    metric.process(None, [dict(pred_points=GT + DISP, gt_points=GT)])
    res = metric.evaluate(1)
    assert res['landmark/mre'] == pytest.approx(7.0)


def test_metric_rejects_missing_keys():
    metric = LandmarkMetric()
    with pytest.raises(InvalidInputError, match='pred_points'):
        metric.process(None, [dict(gt_points=GT)])
