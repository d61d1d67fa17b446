"""Helpers of the viewer browser tests (tests/test_viewer): the Chromium binary and its flags,
``tools/viewer.py`` in a subprocess, and polling a page.

Chromium is Debian's ``/usr/bin/chromium`` (tools/setup_env.sh installs it; ``MMANAT_CHROMIUM``
names another binary); Playwright never downloads a browser here.
"""
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM_FLAGS = [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    # WebGL2 for NiiVue without a GPU: ANGLE on SwiftShader (CPU)
    '--use-angle=swiftshader', '--enable-unsafe-swiftshader',
]


def chromium_executable() -> str:
    """The Chromium binary the browser tests use (fails the test when there is none)."""
    path = os.environ.get('MMANAT_CHROMIUM') or shutil.which('chromium') or '/usr/bin/chromium'
    if not os.path.isfile(path):
        pytest.fail(f'headless Chromium not found ({path}): run `bash tools/setup_env.sh` as '
                    'root (it apt-installs chromium and chromium-driver) or set MMANAT_CHROMIUM;'
                    ' MMANAT_SKIP_BROWSER=1 skips the browser tests explicitly.')
    return path


class ViewerProcess:
    """``tools/viewer.py`` running in a subprocess; its output is collected in ``lines``."""

    def __init__(self, args, cwd=ROOT, timeout=240):
        env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONUNBUFFERED='1')
        self.proc = subprocess.Popen([sys.executable, str(ROOT / 'tools' / 'viewer.py')] + args,
                                     cwd=str(cwd), env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, encoding='utf-8')
        self.lines = []
        self.url = None
        threading.Thread(target=self._drain, daemon=True).start()
        t0 = time.time()
        while self.url is None and time.time() - t0 < timeout:
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        if self.url is None:
            self.stop()
            pytest.fail('the viewer did not start:\n' + '\n'.join(self.lines[-30:]))

    def _drain(self):
        for line in self.proc.stdout:
            self.lines.append(line.rstrip('\n'))
            if 'serving on ' in line and self.url is None:
                self.url = line.split('serving on ', 1)[1].split()[0]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def wait_js(page, expr: str, timeout: float = 60.0, what: str = ''):
    """Poll a JavaScript expression until it is truthy (``page.wait_for_function`` would need
    'unsafe-eval', which the page's Content-Security-Policy forbids)."""
    t0 = time.time()
    while time.time() - t0 < timeout:
        value = page.evaluate(expr)
        if value:
            return value
        time.sleep(0.1)
    status = page.evaluate("document.getElementById('status').textContent")
    error = page.evaluate("document.getElementById('error-text').textContent")
    raise AssertionError(f'timed out after {timeout} s waiting for {what or expr}; page '
                         f'status: {status}; error: {error}')
