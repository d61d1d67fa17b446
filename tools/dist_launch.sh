#!/usr/bin/env bash
# The torchrun launcher behind tools/dist_train.sh and tools/dist_test.sh:
#   tools/dist_launch.sh SCRIPT NPROC [SCRIPT args...]
# Multi-node: set NNODES, NODE_RANK, MASTER_ADDR, MASTER_PORT on every node.
# On a CPU-only machine the same command runs with the gloo backend.
set -euo pipefail
if [[ $# -lt 2 || ! "$2" =~ ^[0-9]+$ ]]; then
  echo "usage: $0 SCRIPT NPROC [SCRIPT options...]  (e.g. $0 train.py 8 CONFIG)" >&2
  exit 2
fi
SCRIPT=$1
NPROC=$2
shift 2
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-${MASTER_PORT:-29500}}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
DIR=$(cd "$(dirname "$0")" && pwd)
PYTHON=${PYTHON:-python}
if [[ -x "$DIR/../.venv/bin/python" && -z "${VIRTUAL_ENV:-}" && "$PYTHON" == python ]]; then
  PYTHON="$DIR/../.venv/bin/python"
fi
PYTHONPATH="$DIR/..:${PYTHONPATH:-}" OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} \
exec "$PYTHON" -m torch.distributed.run \
  --nnodes="$NNODES" --node_rank="$NODE_RANK" --master_addr="$MASTER_ADDR" \
  --nproc_per_node="$NPROC" --master_port="$PORT" \
  "$DIR/$SCRIPT" "$@" --launcher pytorch
