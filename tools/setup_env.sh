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

want=$(cat tools/setup_env.sh setup.py requirements/*.txt 2>/dev/null | sha256sum | cut -d' ' -f1)
if [[ -z "${FORCE:-}" && -f "$STAMP" && "$(cat "$STAMP")" == "$want" ]]; then
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
# the package itself, editable, with the test extras
pip_install -q --no-build-isolation -e ".[tests]"
"$VPY" -c "import torch, mmengine, mmcv, mmcv._ext, mmdet, SimpleITK, torchio, nibabel, skimage; print('[setup] ok: torch', torch.__version__, '| mmcv', mmcv.__version__, '| mmdet', mmdet.__version__)"
echo "$want" > "$STAMP"
