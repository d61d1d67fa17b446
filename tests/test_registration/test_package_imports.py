"""``mmanat.registration`` sits below ``mmanat.apis`` and ``mmanat.evaluation`` (and beside
``mmanat.datasets``): importing it must load none of them."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = ('mmanat.apis', 'mmanat.evaluation', 'mmanat.datasets', 'mmanat.models',
             'mmanat.cli', 'mmanat.engine', 'mmanat.visualization')


@pytest.mark.parametrize('module', ['mmanat.registration', 'mmanat.registration.point_fits',
                                    'mmanat.registration.sitk_registration'])
def test_registration_imports_no_higher_layer(module):
    code = ('import json, sys, importlib; importlib.import_module(%r); '
            'print(json.dumps(sorted(m for m in sys.modules if m.startswith("mmanat"))))'
            % module)
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                         check=True, cwd=REPO_ROOT).stdout
    loaded = json.loads(out.strip().splitlines()[-1])
    assert module in loaded
    bad = [m for m in loaded if m.split('.')[:2] in [f.split('.') for f in FORBIDDEN]]
    assert bad == [], f'{module} imports {bad}'
