"""``tools/benchmark.py --only xray --quick`` with the baselines, into a temporary folder."""
import json

import numpy as np
import pytest

from mmanat.cli import benchmark


def test_xray_in_the_command_line():
    assert 'xray' in benchmark.BENCHMARKS
    args = benchmark.parse_args(['--only', 'xray', '--quick', '--baselines', 'identity'])
    assert args.only == ['xray'] and args.baselines == ['identity']


@pytest.mark.slow
def test_run_xray_benchmark_quick(tmp_path, sample_data_dir):
    has_real = (sample_data_dir / 'xray' / 'RG1_UNCR.dcm').is_file()
    out, js = tmp_path / 'bench.md', tmp_path / 'bench.json'
    report = benchmark.run_benchmarks(
        ['xray'], quick=True, baseline_names=['identity', 'sitk_affine', 'sitk_bspline',
                                              'ants_affine'],
        data_dir=str(sample_data_dir), work_dir=str(tmp_path / 'work'), out=str(out),
        json_path=str(js), cmdline='test')
    assert report == str(out)
    data = json.loads(js.read_text())
    tables = {t['name']: t for t in data['tables']}
    assert 'xray_cross_subject' in tables
    assert ('xray_deformation' in tables) == has_real
    if not has_real:
        assert any('real radiograph missing' in s for s in data['skipped'])
    text = out.read_text()
    assert 'Chest X-ray: one-shot landmarks across synthetic subjects' in text
    for name, table in tables.items():
        assert table['columns'][:2] == ['method', 'MRE (mm)']
        rows = {r[0]: r for r in table['rows']}
        assert set(rows) == {'identity', 'sitk_affine', 'sitk_bspline', 'ants_affine'}
        assert isinstance(rows['ants_affine'][1], str)  # not installed, or volumes only
        for m in ('identity', 'sitk_affine', 'sitk_bspline'):
            mre, w5, w10, n = rows[m][1], rows[m][4], rows[m][5], rows[m][6]
            assert np.isfinite(mre) and 0 <= w5 <= w10 <= 1 and n > 0, (name, rows[m])
        cases = table['details']['cases']
        assert {c['case'] for c in cases} == {c['name'] for c in table['details']['case_info']}
        assert not any(c['error'] for c in cases), cases
    syn = tables['xray_cross_subject']['details']['case_info']
    assert len(syn) == 4 and all(len(c['template_shape']) == 2 for c in syn)
    if has_real:
        rows = {r[0]: r for r in tables['xray_deformation']['rows']}
        # a known affine + smooth deformation of the same image: registration beats identity
        assert rows['sitk_affine'][1] < rows['identity'][1]
        assert rows['sitk_bspline'][1] < rows['identity'][1]


@pytest.mark.parametrize('quick,preset,expect_quick', [
    (False, None, False), (True, None, True), (False, 'quick', True), (True, 'default', False)])
def test_registration_preset_option(monkeypatch, tmp_path, quick, preset, expect_quick):
    """``--registration-preset`` chooses the baselines' preset independently of ``--quick``."""
    from mmanat.evaluation import baselines
    seen = {}

    def record(quick=False, names=None):
        seen['quick'] = quick
        raise RuntimeError('stop after choosing the baselines')

    monkeypatch.setattr(baselines, 'default_baselines', record)
    with pytest.raises(RuntimeError, match='stop after'):
        benchmark.run_benchmarks(['xray'], quick=quick, registration_preset=preset,
                                 work_dir=str(tmp_path), out=str(tmp_path / 'b.md'))
    assert seen['quick'] is expect_quick
    args = benchmark.parse_args(['--registration-preset', 'quick'])
    assert args.registration_preset == 'quick'


@pytest.mark.parametrize('chosen,expected', [
    (['consensus'], ['m+consensus']),
    (['direct', 'consensus'], ['m', 'm+consensus']),
    (['direct', 'stable', 'consensus'], ['m', 'm+stable', 'm+consensus'])])
def test_match_methods_option(monkeypatch, tmp_path, chosen, expected):
    """``--match-methods`` chooses the rows of each model; the per-model benchmarks (speed,
    propagation) still see each model once, under its own name."""
    from mmanat.evaluation import benchmark as br
    calls = {}

    def fake_init(cfg, ckpt, device=None):  # the model object is only passed through
        return object()

    import mmanat.apis
    monkeypatch.setattr(mmanat.apis, 'init_model', fake_init)
    monkeypatch.setattr(br.methods, 'model_image_ndim', lambda model: 3)
    methods = br.mmanat_methods(['cfg.py'], [None], ['m'], direct='direct' in chosen,
                                stable='stable' in chosen, consensus='consensus' in chosen)
    assert [m.name for m in methods] == expected
    once = benchmark._one_row_per_model(methods)
    assert len(once) == 1 and once[0].model_name == 'm'

    def record_speed(model, log=None, **kw):
        calls.setdefault('speed', []).append(model)
        return []

    def record_methods(*args, **kw):
        calls['kw'] = kw
        return methods

    monkeypatch.setattr(br, 'mmanat_methods', record_methods)
    monkeypatch.setattr(br, 'run_speed_benchmark', record_speed)
    benchmark.run_benchmarks(['speed'], configs=['cfg.py'], baseline_names=[],
                             match_methods=chosen, work_dir=str(tmp_path),
                             out=str(tmp_path / 'b.md'))
    assert calls['kw'] == dict(device=None, direct='direct' in chosen,
                               stable='stable' in chosen, consensus='consensus' in chosen)
    assert len(calls['speed']) == 1
    args = benchmark.parse_args(['--match-methods', 'direct', 'consensus'])
    assert args.match_methods == ['direct', 'consensus']
    with pytest.raises(SystemExit):
        benchmark.parse_args(['--match-methods', 'fastest'])
    # from Python, a wrong name is an error (not a model silently skipped)
    from mmanat.utils.exceptions import InvalidInputError
    with pytest.raises(InvalidInputError, match='fastest'):
        benchmark.run_benchmarks(['speed'], configs=['cfg.py'], baseline_names=[],
                                 match_methods=['fastest'], work_dir=str(tmp_path),
                                 out=str(tmp_path / 'b2.md'))
