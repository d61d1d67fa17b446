"""The console commands (setup.py ``console_scripts``) and their ``tools/*.py`` twins: each
``--help`` lists the command's own options; a bad input ends with one ``error:`` line and exit
code 2, never a traceback (run in subprocesses, through the installed executable and the
script); the shared error path of :mod:`mmanat.cli.runner`.

The ``--help`` checks run in this process (``runpy`` of the script, the installed entry
point's function): importing torch once per command in a subprocess costs seconds each.
"""
import os
import os.path as osp
import re
import runpy
import shutil
import subprocess
import sys

import pytest

from mmanat.cli import runner
from mmanat.utils.exceptions import InvalidInputError, MMAnatError

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

# console command -> (tools script, options or text only its --help shows)
COMMANDS = {
    'mmanat-embed': ('embed.py', ['--out-dir', '--num-parts', '--part-id', '--dtype']),
    'mmanat-match': ('match.py', ['--points', '--target', '--stable-points', '--method']),
    'mmanat-register': ('register.py', ['--moving', '--fixed', '--grid-spacing',
                                        '--bspline-preset']),
    'mmanat-demo': ('demo.py', ['--template-label', '--via-registration', 'SAM embeddings']),
    'mmanat-demo-semantic': ('demo_semantic.py', ['--template-label', 'UAE-S demo: match']),
    'mmanat-demo-semantic-stable-points': ('demo_semantic_stable_points.py',
                                           ['--stable-points', 'stable-points structural']),
    'mmanat-demo-ct-mr': ('demo_ct_mr.py', ['--seed', 'UAE-M demo']),
    'mmanat-demo-xray': ('demo_xray.py', ['--template-points', '--seeds', 'chest X-ray']),
    'mmanat-train': ('train.py', ['--resume', '--cfg-options', '--launcher', '--amp']),
    'mmanat-benchmark': ('benchmark.py', ['--quick', '--only', '--baselines']),
    'mmanat-benchmark-inference': ('benchmark_inference.py', ['--max-reference-points',
                                                              '--shift']),
    'mmanat-preprocess': ('preprocess.py', ['--no-body-crop', '--mask-body', '--spacing']),
    'mmanat-fetch-data': ('fetch_sample_data.py', ['--force', '--out']),
    'mmanat-make-synthetic': ('make_synthetic_data.py', ['--modalities', '--mr-preset',
                                                         '--z-range']),
    'mmanat-extract-eve': ('extract_eve.py', ['--patch-size', '--batch-size', '--points']),
    'mmanat-eval-lesion-tracking': ('eval_lesion_tracking.py', ['--ann', '--pred',
                                                                '--image-dir']),
    'mmanat-publish-checkpoint': ('publish_checkpoint.py', ['--fp16', '--zoo', '--task']),
    'mmanat-uae-m-recipe': ('uae_m_recipe.py', ['--stage1', '--rounds', '--test-cases']),
    'mmanat-convert-sam': ('model_converters/sam_to_mmanat.py', ['--model', 'uae_m']),
    'mmanat-convert-adam': ('model_converters/adam_to_mmanat.py', ['--version']),
    'mmanat-propagate': ('propagate.py', ['--labels', '--target-labels', '--regularization']),
    'mmanat-query': ('query.py', ['--targets-dir', '--index', '--min-score']),
    'mmanat-viewer': ('viewer.py', ['--no-browser', '--cache-dir', '--spacing']),
}
OWNED_ELSEWHERE = {'mmanat-test'}  # tests/test_tools/test_test.py


def _env():
    env = dict(os.environ, OMP_NUM_THREADS='1')
    env['PYTHONPATH'] = ROOT + os.pathsep + env.get('PYTHONPATH', '')
    return env


def _entry_point(name):
    exe = shutil.which(name, path=osp.dirname(sys.executable)) or shutil.which(name)
    if exe is None:
        pytest.fail(f'console command {name} is not installed; install the package with '
                    '`pip install --no-build-isolation --no-deps -e .` (tools/setup_env.sh '
                    'does it)')
    return [exe]


def _run(cmd, cwd=ROOT, timeout=120):
    return subprocess.run(cmd, cwd=cwd, capture_output=True, encoding='utf-8',
                          errors='replace', env=_env(), timeout=timeout)


def _how(kind, name):
    if kind == 'entry point':
        return _entry_point(name)
    return [sys.executable, osp.join(ROOT, 'tools', COMMANDS[name][0])]


def test_entry_points_of_setup_py_are_the_commands_tested_here():
    text = open(osp.join(ROOT, 'setup.py'), encoding='utf-8').read()
    declared = dict(re.findall(r"'(mmanat-[a-z0-9-]+) = (mmanat\.cli\.[a-z_]+:[a-z_]+)'",
                               text))
    assert set(declared) == set(COMMANDS) | OWNED_ELSEWHERE
    # every tools/*.py script of this table exists and is a thin wrapper of that main
    for name, (script, _) in COMMANDS.items():
        module, func = declared[name].split(':')
        src = open(osp.join(ROOT, 'tools', script), encoding='utf-8').read()
        assert f'from {module} import {func}' in src, script
        assert 'sys.path' not in src, script


def _console_function(name):
    from importlib.metadata import entry_points
    found = entry_points(group='console_scripts', name=name)
    if not found:
        pytest.fail(f'console command {name} is not installed; install the package with '
                    '`pip install --no-build-isolation --no-deps -e .`')
    return next(iter(found)).load()


@pytest.mark.parametrize('kind', ['entry point', 'tools script'])
@pytest.mark.parametrize('name', sorted(COMMANDS))
def test_help_lists_the_command_options(name, kind, capsys, monkeypatch):
    with pytest.raises(SystemExit) as exc:
        if kind == 'entry point':
            _console_function(name)(['--help'])
        else:
            script = osp.join(ROOT, 'tools', COMMANDS[name][0])
            monkeypatch.setattr(sys, 'argv', [script, '--help'])
            runpy.run_path(script, run_name='__main__')
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith('usage:'), out[:200]
    for option in COMMANDS[name][1]:
        assert option in out, f'{name} --help lacks {option!r}:\n{out}'


def test_installed_executable_prints_help():
    proc = _run(_entry_point('mmanat-register') + ['--help'])
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith('usage: mmanat-register') and '--moving' in proc.stdout


@pytest.mark.parametrize('kind', ['entry point', 'tools script'])
def test_missing_input_is_one_error_line_without_traceback(tmp_path, kind):
    points = tmp_path / 'points.csv'
    points.write_text('name,x,y,z\napex,1.0,2.0,3.0\n')
    proc = _run(_how(kind, 'mmanat-match') + [
        '--template', str(tmp_path / 'missing.nii.gz'), '--points', str(points), '--target',
        str(tmp_path / 'missing_too.nii.gz'), '--out', str(tmp_path / 'found.csv'),
        '--no-progress'], cwd=str(tmp_path))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert 'Traceback' not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith('error: ') and 'missing.nii.gz: file not found' in lines[0]
    assert not (tmp_path / 'found.csv').exists()


def test_train_with_a_missing_config_is_one_error_line(tmp_path):
    proc = _run(_how('tools script', 'mmanat-train') + [str(tmp_path / 'nope.py')])
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f'error: config file not found: {tmp_path / "nope.py"}; pass')


def test_runner_error_paths(capsys):
    def multi_line(argv):
        raise InvalidInputError('a.nii.gz: cannot read it.\n  Convert it to NIfTI first.')

    def interrupted(argv):
        raise KeyboardInterrupt

    def bug(argv):
        raise RuntimeError('a bug, not a user error')

    assert runner.run(multi_line) == 2
    assert capsys.readouterr().err == ('error: a.nii.gz: cannot read it. Convert it to NIfTI '
                                       'first.\n')
    assert runner.run(interrupted) == 130
    assert capsys.readouterr() == ('', '')
    with pytest.raises(RuntimeError):  # a bug keeps its traceback
        runner.run(bug)
    assert runner.run(lambda argv: None) == 0
    assert runner.command(lambda argv: 1)(['x']) == 1
    main = runner.command(lambda argv: (_ for _ in ()).throw(MMAnatError(f'bad {argv}')))
    assert main(['--x']) == 2 and capsys.readouterr().err == "error: bad ['--x']\n"
