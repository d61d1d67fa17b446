"""The package shape of docs/en/advanced_guides/architecture.md, enforced.

- the layer contract in ``.importlinter`` holds (``lint-imports``; indirect and
  function-local imports count);
- no module of ``mmanat/`` is over 500 lines;
- no tool imports a private (``_``-prefixed) name of the package.
"""
import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAX_LINES = 500


def _lint_imports_command():
    exe = shutil.which('lint-imports', path=os.path.dirname(sys.executable))
    if exe is None:
        pytest.fail('lint-imports is not installed: run tools/setup_env.sh (it installs the '
                    'test extras, import-linter included)')
    return [exe, '--config', str(ROOT / '.importlinter')]


def test_layer_contracts_hold():
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run(_lint_imports_command(), cwd=ROOT, env=env, capture_output=True,
                          encoding='utf-8', errors='replace', timeout=300)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    assert 'Contracts: 3 kept, 0 broken.' in proc.stdout, proc.stdout[-2000:]


def test_no_module_over_500_lines():
    too_long = {}
    for path in (ROOT / 'mmanat').rglob('*.py'):
        n = len(path.read_text(encoding='utf-8').splitlines())
        if n > MAX_LINES:
            too_long[str(path.relative_to(ROOT))] = n
    assert not too_long, f'split these modules along their jobs: {too_long}'


def _private_imports(path: Path):
    tree = ast.parse(path.read_text(encoding='utf-8'), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or '').startswith('mmanat'):
            parts = node.module.split('.')
            found += [f'{node.module} (module)' for p in parts if p.startswith('_')]
            found += [f'{node.module}.{a.name}' for a in node.names if a.name.startswith('_')
                      and not a.name.startswith('__')]
        elif isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.startswith('mmanat')
                      and any(p.startswith('_') for p in a.name.split('.'))]
        elif isinstance(node, ast.Attribute) and node.attr.startswith('_') \
                and not node.attr.startswith('__'):
            # mmanat.<...>._private used through a module attribute
            chain, cur = [node.attr], node.value
            while isinstance(cur, ast.Attribute):
                chain.append(cur.attr)
                cur = cur.value
            if isinstance(cur, ast.Name) and cur.id == 'mmanat':
                found.append('.'.join(['mmanat'] + chain[::-1]))
    return found


def test_tools_import_no_private_names():
    offenders = {}
    for path in (ROOT / 'tools').rglob('*.py'):
        names = _private_imports(path)
        if names:
            offenders[str(path.relative_to(ROOT))] = names
    assert not offenders, f'give these a public name in mmanat: {offenders}'


def test_private_import_detector_catches_each_form(tmp_path):
    sample = tmp_path / 'tool.py'
    sample.write_text('from mmanat.apis.eve import _resize\n'
                      'from mmanat.datasets import volume_list_dataset as v\n'
                      'import mmanat\n'
                      'x = mmanat.apis._secret\n')
    assert _private_imports(sample) == ['mmanat.apis.eve._resize', 'mmanat.apis._secret']
