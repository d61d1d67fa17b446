#!/usr/bin/env bash
# Multi-process training with torchrun: tools/dist_train.sh CONFIG NPROC [train.py args...]
# Multi-node: set NNODES, NODE_RANK, MASTER_ADDR, MASTER_PORT on every node.
# On a CPU-only machine the same command trains with the gloo backend.
set -euo pipefail
CONFIG=$1
NPROC=$2
shift 2
exec "$(dirname "$0")/dist_launch.sh" train.py "$NPROC" "$CONFIG" "$@"
