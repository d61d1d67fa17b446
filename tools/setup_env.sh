#!/usr/bin/env bash
# Create (or refresh) the project virtual environment at .venv and install everything mmanat
# needs. Idempotent: when nothing relevant changed since the last successful run it returns in
# well under a second. Safe to interrupt: the stamp is written only after a complete install.
#
#   bash tools/setup_env.sh          # normal use (make demo / make test call it)
#   FORCE=1 bash tools/setup_env.sh  # reinstall everything
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
VENV="$ROOT/.venv"
STAMP="$VENV/.mmanat-setup-stamp"

# Versions known to work together (see docs/en/get_started.md, "Install").
TORCH_VERSION=2.13.0
MMENGINE_VERSION=0.10.7
MMCV_VERSION=2.1.0
MMDET_VERSION=3.3.0

# the viewer's page (mmanat/viewer): NiiVue from npm, pinned by package-lock.json, served
# locally from node_modules (nothing is fetched when the viewer runs)
FRONTEND="$ROOT/mmanat/viewer/frontend"
install_frontend() {
  local lock="$FRONTEND/package-lock.json" mark="$FRONTEND/node_modules/.mmanat-lock-sha256"
  local sha
  sha=$(sha256sum "$lock" | cut -d' ' -f1)
  if [[ -z "${FORCE:-}" && -f "$mark" && "$(cat "$mark")" == "$sha" \
        && -f "$FRONTEND/node_modules/@niivue/niivue/dist/index.js" ]]; then
    return 0
  fi
  if ! command -v npm >/dev/null 2>&1; then
    echo "[setup] WARNING: npm not found: the viewer (tools/viewer.py) needs NiiVue; install" \
      "Node.js 18+ with npm, then run this script again"
    return 0
  fi
  echo "[setup] installing the viewer's front-end (npm ci in mmanat/viewer/frontend)"
  if (cd "$FRONTEND" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error); then
    echo "$sha" > "$mark"
  else
    echo "[setup] WARNING: npm ci failed: the viewer page will not load NiiVue"
  fi
}
# headless Chromium for the browser tests (tests/test_viewer): Debian's packages
install_browser() {
  if command -v chromium >/dev/null 2>&1 || [[ -x /usr/bin/chromium ]]; then
    return 0
  fi
  if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    echo "[setup] installing chromium and chromium-driver (apt-get) for the browser tests"
    if ! (export DEBIAN_FRONTEND=noninteractive; apt-get update -q >/dev/null \
          && apt-get install -y -q chromium chromium-driver >/dev/null); then
      echo "[setup] WARNING: apt-get could not install chromium; the browser tests will fail" \
        "(MMANAT_SKIP_BROWSER=1 skips them explicitly)"
    fi
  else
    echo "[setup] WARNING: chromium not found and apt-get is not usable here (needs root):" \
      "install the Debian packages chromium and chromium-driver (sudo apt-get install" \
      "chromium chromium-driver); until then the browser tests (tests/test_viewer) fail;" \
      "MMANAT_SKIP_BROWSER=1 skips them explicitly"
  fi
}

want=$(cat tools/setup_env.sh setup.py requirements/*.txt 2>/dev/null | sha256sum | cut -d' ' -f1)
if [[ -z "${FORCE:-}" && -f "$STAMP" && "$(cat "$STAMP")" == "$want" ]]; then
  install_frontend
  install_browser
  exit 0
fi

echo "[setup] creating/updating virtual environment at .venv (python: $PY)"
[[ -x "$VENV/bin/python" ]] || "$PY" -m venv "$VENV"
VPY="$VENV/bin/python"
# every install honours the pins in requirements/constraints.txt (torch CPU build, numpy<2, ...)
pip_install() {
  set +e
  "$VPY" -m pip install --disable-pip-version-check -c "$ROOT/requirements/constraints.txt" "$@" 2>&1 \
    | grep -v "^WARNING: Location"
  local rc=${PIPESTATUS[0]}
  set -e
  return "$rc"
}

pip_install -q --upgrade "pip<25" setuptools wheel ninja
# torch first, pinned: a loose requirement would pull a multi-GB CUDA build.
pip_install -q "torch==$TORCH_VERSION"
pip_install -q "mmengine==$MMENGINE_VERSION"

# mmcv with its compiled CPU ops: built from source once (about 11 minutes on 2 cores), then
# pip's wheel cache makes every later install take seconds.
if ! "$VPY" -c "import mmcv, mmcv._ext; assert mmcv.__version__ == '$MMCV_VERSION'" 2>/dev/null; then
  echo "[setup] installing mmcv $MMCV_VERSION with ops (first time: builds from source, ~11 min)"
  MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-2} FORCE_CUDA=0 \
    pip_install -q "mmcv==$MMCV_VERSION" --no-build-isolation
fi
pip_install -q "mmdet==$MMDET_VERSION"
# the package itself, editable, with the test extras (playwright drives the system chromium
# in the browser tests; it never downloads a browser of its own)
PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 pip_install -q --no-build-isolation -e ".[tests]"
"$VPY" -c "import torch, mmengine, mmcv, mmcv._ext, mmdet, SimpleITK, torchio, nibabel, skimage, starlette, uvicorn; print('[setup] ok: torch', torch.__version__, '| mmcv', mmcv.__version__, '| mmdet', mmdet.__version__)"
install_frontend
install_browser
echo "$want" > "$STAMP"
