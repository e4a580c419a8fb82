#!/usr/bin/env bash
# torchrun (mmengine's 'pytorch' launcher) for tools/train.py or tools/test.py,
# the part tools/dist_train.sh and tools/dist_test.sh share:
#   bash tools/misc/dist_launch.sh SCRIPT NPROC [SCRIPT's arguments ...]
# Several machines: set NNODES, NODE_RANK, MASTER_ADDR (and PORT) on each.
set -euo pipefail
SCRIPT=$1
NPROC=$2
shift 2
TOOLS=$(cd "$(dirname "$0")/.." && pwd)
exec torchrun --nnodes="${NNODES:-1}" --node_rank="${NODE_RANK:-0}" \
    --master_addr="${MASTER_ADDR:-127.0.0.1}" --master_port="${PORT:-29500}" \
    --nproc_per_node="$NPROC" \
    "$TOOLS/$SCRIPT" "$@" --launcher pytorch
