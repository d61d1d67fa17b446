"""mmanat-match (tools/match.py) and mmanat-embed (tools/embed.py) feeding it, end to end on a
tiny model and volumes (in-process calls of ``main``; tests/test_tools/test_commands.py runs
the commands in subprocesses)."""
import os
import os.path as osp

import numpy as np
import pytest
import torch

from mmanat.cli import embed, match
from mmanat.fileio import read_points, write_image, write_points
from mmanat.structures import PointSet
from tests.helpers.position_encoder_standin import (PositionEncoderStandIn, moved,
                                                    quadratic_volume)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SHIFT = np.array([6.2, -4.5, 3.1])


@pytest.fixture(scope='module')
def match_tool():
    return match


@pytest.fixture(scope='module')
def embed_tool():
    return embed


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    """A template, two moved copies, a tiny config + checkpoint, three query points."""
    d = tmp_path_factory.mktemp('cli')
    tpl = quadratic_volume(shape=(16, 48, 48), origin=(-40.0, -50.0, -10.0))
    paths = dict(template=write_image(tpl, str(d / 'template.nrrd')),
                 target=write_image(moved(tpl, SHIFT), str(d / 'target.nrrd')),
                 target2=write_image(moved(tpl, -SHIFT), str(d / 'other.nii.gz')))
    cfg = d / 'standin.py'
    cfg.write_text("model = dict(type='PositionEncoderStandIn', channels=32)\n")
    ckpt = d / 'standin.pth'
    torch.save({'state_dict': PositionEncoderStandIn(channels=32).state_dict(), 'meta': {}},
               str(ckpt))
    q = np.array([[-10.0, -20.0, 2.0], [5.5, -3.25, 8.0], [-25.0, -30.0, 5.0]])
    pts = PointSet(q, names=['apex', 'hilum', 'node'])
    paths.update(config=str(cfg), checkpoint=str(ckpt), dir=str(d), q=q,
                 csv=write_points(pts, str(d / 'points.csv')),
                 mrk=write_points(pts, str(d / 'points.mrk.json'), space='RAS'))
    return paths


def _args(s, out, *extra, targets=('target',)):
    args = ['--config', s['config'], '--checkpoint', s['checkpoint'], '--template',
            s['template'], '--out', out, '--no-progress']
    for t in targets:
        args += ['--target', s[t]]
    return args + list(extra)


def test_csv_end_to_end_writes_points_with_scores(setup, match_tool, tmp_path, capsys):
    out = str(tmp_path / 'found.csv')
    assert match_tool.main(_args(setup, out, '--points', setup['csv'])) == 0
    res = read_points(out)
    assert res.names == ['apex', 'hilum', 'node']
    assert np.linalg.norm(res.xyz - (setup['q'] + SHIFT), axis=1).max() < 1.0
    assert all(0.99 < s <= 1.0 + 1e-6 for s in res.extra['score'])
    header = open(out).readline().strip().split(',')
    assert header[:4] == ['name', 'x', 'y', 'z'] and {'score', 'i', 'j', 'k'} <= set(header)
    printed = capsys.readouterr().out
    assert 'apex' in printed and 'score' in printed and 'timing' in printed


def test_mrk_json_ras_and_several_targets(setup, match_tool, tmp_path):
    out = str(tmp_path / 'found.mrk.json')
    code = match_tool.main(_args(setup, out, '--points', setup['mrk'], '--space', 'RAS',
                                 '--method', 'coarse_to_fine',
                                 targets=('target', 'target2')))
    assert code == 0
    assert sorted(os.listdir(tmp_path)) == ['found_other.mrk.json', 'found_target.mrk.json']
    a = read_points(str(tmp_path / 'found_target.mrk.json'))  # declares RAS, read as LPS
    b = read_points(str(tmp_path / 'found_other.mrk.json'))
    assert '"coordinateSystem": "RAS"' in open(tmp_path / 'found_target.mrk.json').read()
    assert np.linalg.norm(a.xyz - (setup['q'] + SHIFT), axis=1).max() < 1.0
    assert np.linalg.norm(b.xyz - (setup['q'] - SHIFT), axis=1).max() < 1.0


def test_consensus_method_writes_num_local(setup, match_tool, tmp_path, capsys):
    out = str(tmp_path / 'found.csv')
    assert match_tool.main(_args(setup, out, '--points', setup['csv'], '--method',
                                 'consensus')) == 0
    res = read_points(out)
    assert np.linalg.norm(res.xyz - (setup['q'] + SHIFT), axis=1).max() < 1.0
    assert 'num_local' in res.extra and min(res.extra['num_local']) > 0
    assert '(consensus' in capsys.readouterr().out


def test_points_outside_template_write_nothing(setup, match_tool, tmp_path, capsys):
    bad = write_points(PointSet([[0.0, 0.0, 0.0], [500.0, 0.0, 0.0]], names=['ok', 'far']),
                       str(tmp_path / 'bad.csv'))
    out = str(tmp_path / 'out.csv')
    assert match_tool.main(_args(setup, out, '--points', bad)) == 2
    err = capsys.readouterr().err
    assert 'far at [500.0, 0.0, 0.0]' in err and 'outside the template' in err
    assert not osp.exists(out)


def test_checkpoint_not_fitting_the_config_writes_nothing(setup, match_tool, tmp_path,
                                                          capsys):
    ckpt = str(tmp_path / 'wrong.pth')
    torch.save({'state_dict': {'backbone.conv.weight': torch.zeros(1)}}, ckpt)
    out = str(tmp_path / 'out.csv')
    args = _args(setup, out, '--points', setup['csv'])
    args[args.index('--checkpoint') + 1] = ckpt
    assert match_tool.main(args) == 2
    err = capsys.readouterr().err
    assert 'does not fit the config' in err and 'backbone.conv.weight' in err
    assert not osp.exists(out)


def test_embed_then_match_caches_without_a_model(setup, embed_tool, match_tool, tmp_path):
    cache_dir = str(tmp_path / 'emb')
    common = ['--config', setup['config'], '--checkpoint', setup['checkpoint'], '--out-dir',
              cache_dir]
    # two parts: part 1 of 2 takes every second input (sorted by path)
    assert embed_tool.main([setup['template'], setup['target'], '--num-parts', '2',
                            '--part-id', '1'] + common) == 0
    assert os.listdir(cache_dir) == ['template.emb.pt']
    assert embed_tool.main([setup['dir'], '--exclude', 'other*'] + common) == 0
    assert sorted(os.listdir(cache_dir)) == ['target.emb.pt', 'template.emb.pt']
    out_cache = str(tmp_path / 'from_cache.csv')
    code = match_tool.main(['--template', osp.join(cache_dir, 'template.emb.pt'),
                            '--target', osp.join(cache_dir, 'target.emb.pt'),
                            '--points', setup['csv'], '--out', out_cache, '--no-progress'])
    assert code == 0
    out_img = str(tmp_path / 'from_images.csv')
    assert match_tool.main(_args(setup, out_img, '--points', setup['csv'])) == 0
    a, b = read_points(out_cache), read_points(out_img)
    # float16 caches: the same matches up to the refinement's sensitivity
    assert np.abs(a.xyz - b.xyz).max() < 0.1


def test_embed_reports_bad_inputs(setup, embed_tool, tmp_path, capsys):
    junk = tmp_path / 'junk.nrrd'
    junk.write_bytes(b'NRRD0004\nnot really\n')
    code = embed_tool.main([str(junk), setup['template'], '--config', setup['config'],
                            '--checkpoint', setup['checkpoint'], '--out-dir',
                            str(tmp_path / 'emb')])
    assert code == 1
    assert 'junk.nrrd' in capsys.readouterr().err
    assert os.listdir(tmp_path / 'emb') == ['template.emb.pt']


def test_real_sam_tiny_end_to_end(setup, match_tool, tmp_path):
    pytest.importorskip('mmcv.cnn', reason='SAM needs mmcv')
    from mmanat.apis import init_model
    cfg = osp.join(ROOT, 'configs', '_base_', 'models', 'sam_tiny.py')
    torch.manual_seed(0)
    model = init_model(cfg, device='cpu')
    ckpt = str(tmp_path / 'sam_tiny.pth')
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, ckpt)
    out = str(tmp_path / 'sam.csv')
    args = ['--config', cfg, '--checkpoint', ckpt, '--template', setup['template'],
            '--target', setup['target'], '--points', setup['csv'], '--out', out,
            '--no-progress', '--device', 'cpu']
    assert match_tool.main(args) == 0
    res = read_points(out)
    assert len(res) == 3 and len(res.extra['score']) == 3
    assert all(-1.0 <= s <= 1.0 + 1e-6 for s in res.extra['score'])
    from mmanat.fileio import read_volume
    tgt = read_volume(setup['target'])
    assert np.all(tgt.contains_world(res.xyz))



def test_low_scores_are_flagged_and_warned(setup, match_tool, tmp_path, capsys):
    first = str(tmp_path / 'all.csv')
    assert match_tool.main(_args(setup, first, '--points', setup['csv'], '--min-score',
                                 '-1')) == 0
    scores = np.asarray(read_points(first).extra['score'])
    assert read_points(first).extra['quality'] == ['ok'] * 3
    assert scores.max() > scores.min()
    thr = float((scores.max() + scores.min()) / 2)
    capsys.readouterr()
    out = str(tmp_path / 'flagged.csv')
    assert match_tool.main(_args(setup, out, '--points', setup['csv'], '--min-score',
                                 repr(thr))) == 0
    got = read_points(out)
    assert got.extra['quality'] == ['low_score' if s < thr else 'ok' for s in scores]
    low = [n for n, s in zip(got.names, scores) if s < thr]
    err = capsys.readouterr().err
    assert 'warning' in err and f'{len(low)} of 3 matches scored below' in err
    assert all(n in err for n in low)


def test_every_match_below_min_score_fails_and_writes_nothing(setup, match_tool, tmp_path,
                                                              capsys):
    out = str(tmp_path / 'found.csv')
    assert match_tool.main(_args(setup, out, '--points', setup['csv'], '--min-score',
                                 '1.5')) == 1
    assert not osp.exists(out) and os.listdir(tmp_path) == []
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith('error: every match in') and '--min-score -1' in err[-1]
    assert 'Traceback' not in '\n'.join(err)


def test_topk_reaches_the_search_and_is_refused_without_coarse_to_fine(
        setup, match_tool, tmp_path, monkeypatch):
    from mmanat.apis.matching import Matcher
    from mmanat.utils.exceptions import InvalidInputError

    seen = []
    real = Matcher.match

    def spy(self, *a, **kw):
        seen.append(kw.get('topk'))
        return real(self, *a, **kw)

    monkeypatch.setattr(Matcher, 'match', spy)
    out = str(tmp_path / 'found.csv')
    assert match_tool.main(_args(setup, out, '--points', setup['csv'], '--method',
                                 'coarse_to_fine', '--topk', '9')) == 0
    assert seen == [9]
    res = read_points(out)
    assert np.linalg.norm(res.xyz - (setup['q'] + SHIFT), axis=1).max() < 1.0
    # the default method (consensus), another method, a topk below 1
    for method, topk in ((None, 9), ('reference', 9), ('coarse_to_fine', 0)):
        out2 = str(tmp_path / 'no.csv')
        with pytest.raises(InvalidInputError, match='--topk'):
            match.match_files(setup['template'], setup['csv'], [setup['target']], out2,
                              config=setup['config'], checkpoint=setup['checkpoint'],
                              progress=False, method=method, topk=topk)
        assert not osp.exists(out2)
