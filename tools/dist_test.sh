#!/usr/bin/env bash
# Multi-process testing with torchrun: tools/dist_test.sh CONFIG CHECKPOINT NPROC [test.py args...]
# Multi-node: set NNODES, NODE_RANK, MASTER_ADDR, MASTER_PORT on every node.
# On a CPU-only machine the same command tests with the gloo backend.
set -euo pipefail
if [[ $# -lt 3 || ! "$3" =~ ^[0-9]+$ ]]; then
  echo "usage: $0 CONFIG CHECKPOINT NPROC [test.py options...]  (e.g. $0 CONFIG ckpt.pth 8)" >&2
  exit 2
fi
CONFIG=$1
CHECKPOINT=$2
NPROC=$3
shift 3
exec "$(dirname "$0")/dist_launch.sh" test.py "$NPROC" "$CONFIG" "$CHECKPOINT" "$@"
