#!/usr/bin/env bash
# Multi-process training with torchrun: tools/dist_train.sh CONFIG NPROC [train.py args...]
# Multi-node: set NNODES, NODE_RANK, MASTER_ADDR, MASTER_PORT on every node.
# On a CPU-only machine the same command trains with the gloo backend.
set -euo pipefail
if [[ $# -lt 2 || ! "$2" =~ ^[0-9]+$ ]]; then
  echo "usage: $0 CONFIG NPROC [train.py options...]  (e.g. $0 configs/sam/uae_s.py 8)" >&2
  exit 2
fi
CONFIG=$1
NPROC=$2
shift 2
exec "$(dirname "$0")/dist_launch.sh" train.py "$NPROC" "$CONFIG" "$@"
