import json

import numpy as np
import pytest

from mmanat.evaluation.baselines import IdentityMethod
from mmanat.evaluation.benchmark import (BenchmarkTable, run_landmark_benchmark,
                                         run_lesion_benchmark, write_json, write_report)
from mmanat.evaluation.cases import deform_case, longitudinal_lesion_cases
from mmanat.evaluation.dlt_format import read_dlt_json
from mmanat.structures import MedicalImage


class Oracle:
    """Knows the true deformation of each target (looked up by object identity)."""

    name = 'oracle'

    def __init__(self, deformations):
        self.deformations = deformations

    def __call__(self, template, points, target):
        return self.deformations[id(target)].template_to_target(points)


class Broken:
    name = 'broken'

    def __call__(self, template, points, target):
        raise RuntimeError('boom')


def _ct_case(seed):
    arr = np.full((20, 32, 32), -1000.0, np.float32)
    zz, yy, xx = np.meshgrid(*[np.arange(s) for s in arr.shape], indexing='ij')
    body = ((yy - 16) / 12.0) ** 2 + ((xx - 16) / 13.0) ** 2 < 1
    arr[body] = 40.0
    img = MedicalImage(arr, spacing=(3.0, 3.0, 4.0), origin=(-48, -48, 0), modality='CT')
    return deform_case(img, np.random.default_rng(seed), n_points=10, edge_margin_mm=3.0,
                       name=f'c{seed}')


def test_landmark_benchmark_rows_and_failures(tmp_path):
    (c0, d0), (c1, d1) = _ct_case(0), _ct_case(1)
    oracle = Oracle({id(c0.target): d0, id(c1.target): d1})
    table = run_landmark_benchmark('toy', 'Toy', [c0, c1], [IdentityMethod(), oracle, Broken()],
                                   log=lambda m: None)
    rows = {r[0]: r for r in table.rows}
    assert rows['oracle'][1] == pytest.approx(0.0, abs=1e-6)       # MRE
    assert rows['oracle'][5] == pytest.approx(1.0)                 # within 10 mm
    assert rows['identity'][1] > 0.5
    assert np.isnan(rows['broken'][1]) and rows['broken'][5] == 0.0
    assert any('broken failed' in n for n in table.notes)
    md = table.to_markdown()
    assert '| oracle |' in md and 'MRE (mm)' in md
    js = write_json([table], str(tmp_path / 'b.json'), 'cmd', {'cores': '2'}, 1.0)
    data = json.loads(open(js).read())
    assert data['tables'][0]['rows'][2][1] is None  # NaN -> null
    rep = write_report([table, BenchmarkTable('x', 'Empty', ['a'])], str(tmp_path / 'b.md'),
                       'python tools/benchmark.py --quick', {'cores': '2'}, 3.0, ['speed: no'])
    text = open(rep).read()
    assert 'python tools/benchmark.py --quick' in text and '## Skipped' in text


def test_lesion_benchmark_end_to_end(tmp_path):
    cases = longitudinal_lesion_cases(n_cases=1, spacing=4.0, seed=0, out_dir=str(tmp_path))
    assert cases and (tmp_path / 'test.json').is_file()
    recs = read_dlt_json(tmp_path / 'test.json')
    assert len(recs) == len(cases[0].records)
    assert (tmp_path / recs[0].source).is_file() and (tmp_path / recs[0].target).is_file()
    oracle = Oracle({id(c.target): c.deformation for c in cases})
    table = run_lesion_benchmark(cases, [oracle, IdentityMethod()], str(tmp_path),
                                 log=lambda m: None)
    rows = {r[0]: r for r in table.rows}
    assert rows['oracle'][1] == pytest.approx(1.0)   # CPM@Radius
    assert rows['oracle'][3] == pytest.approx(0.0, abs=1e-3)  # MED
    assert rows['identity'][3] > rows['oracle'][3]
    assert (tmp_path / 'pred_oracle.json').is_file()
