"""The documentation cannot drift from the code.

* Every ```python block of README.md, docs/en/**/*.md and configs/*/README.md runs: the
  blocks of one file in order, in one namespace, in a fresh interpreter with the repository
  root as the working directory. Illustrative snippets (config fragments, shell commands)
  are fenced ```text or ```bash and are not run.
* Every relative link and every ``configs/...py`` path named in those files exists.
* The README stays a README (under 250 lines).

Blocks that read ``data/samples`` need the sample scans (``make test`` fetches them first);
a file whose blocks need them is skipped, with the reason, only when they are absent.
"""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC_FILES = ([ROOT / 'README.md'] + sorted((ROOT / 'docs' / 'en').rglob('*.md'))
             + sorted(ROOT.glob('configs/*/README.md')))
SAMPLES = ROOT / 'data' / 'samples'
# files whose blocks embed real volumes or register images: tens of seconds each
SLOW = {'README.md', 'docs/en/get_started.md', 'docs/en/user_guides/inference_and_matching.md',
        'docs/en/user_guides/registration.md', 'docs/en/advanced_guides/tiled_inference.md',
        'configs/sam/README.md'}

FENCE = re.compile(r'^```(\w*)[^\n]*\n(.*?)^```\s*$', re.S | re.M)
LINK = re.compile(r'\[[^\]]*\]\(([^)\s]+)\)')
CONFIG_PATH = re.compile(r'(?<![\w/.-])(configs/[\w./-]+?\.py)\b')


def rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def python_blocks(path: Path):
    """``[(line number, code), ...]`` of the ```python blocks of a markdown file."""
    text = path.read_text(encoding='utf-8')
    return [(text[:m.start()].count('\n') + 2, m.group(2))
            for m in FENCE.finditer(text) if m.group(1) == 'python']


def runner_script(path: Path) -> str:
    """A script that executes the blocks of ``path`` in order in one namespace, each compiled
    under the name ``<file>:<line>`` so that a traceback points at the markdown line."""
    blocks = python_blocks(path)
    return '\n'.join([
        'import matplotlib',
        "matplotlib.use('Agg')",
        'namespace = {"__name__": "__main__"}',
        f'blocks = {blocks!r}',
        'for line, code in blocks:',
        '    code = "\\n" * (line - 1) + code',
        f'    exec(compile(code, {rel(path)!r}, "exec"), namespace)',
    ])


DOCS_WITH_CODE = [p for p in DOC_FILES if python_blocks(p)]


def test_there_is_code_to_run():
    """The extraction works: the README and the user guides hold runnable blocks."""
    names = {rel(p) for p in DOCS_WITH_CODE}
    assert 'README.md' in names
    assert 'docs/en/user_guides/coordinates_and_io.md' in names
    assert sum(len(python_blocks(p)) for p in DOCS_WITH_CODE) >= 15


@pytest.mark.parametrize('path', [
    pytest.param(p, id=rel(p), marks=[pytest.mark.slow] if rel(p) in SLOW else [])
    for p in DOCS_WITH_CODE
])
def test_python_blocks_run(path):
    code = '\n'.join(c for _, c in python_blocks(path))
    if 'data/samples/' in code and not SAMPLES.is_dir():
        pytest.skip(f'{rel(path)} reads {SAMPLES} (absent): run `make data` or '
                    'tools/fetch_sample_data.py')
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get('PYTHONPATH', ''),
               MPLBACKEND='Agg')
    proc = subprocess.run([sys.executable, '-c', runner_script(path)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, (
        f'a python block of {rel(path)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}')


@pytest.mark.parametrize('path', DOC_FILES, ids=rel)
def test_links_and_config_paths_exist(path):
    text = path.read_text(encoding='utf-8')
    missing = []
    for target in LINK.findall(text):
        if re.match(r'^[a-z]+:', target) or target.startswith('#'):
            continue  # URL or anchor on the same page
        file_part = target.split('#')[0]
        if not (path.parent / file_part).exists():
            missing.append(target)
    # a block that starts with ``# configs/x.py`` shows a file the reader creates
    created = set(re.findall(r'^```\w*\n# (configs/\S+\.py)$', text, re.M))
    for config in CONFIG_PATH.findall(text):
        if config not in created and not (ROOT / config).is_file():
            missing.append(config)
    assert not missing, f'{rel(path)} names files that do not exist: {sorted(set(missing))}'


def test_readme_is_short():
    lines = (ROOT / 'README.md').read_text(encoding='utf-8').count('\n')
    assert lines < 250, f'README.md has {lines} lines; move details to docs/en/'
