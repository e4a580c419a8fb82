#!/usr/bin/env bash
# torchrun (mmengine's 'pytorch' launcher) for one of the tools, the part
# dist_train.sh and dist_test.sh share:
#   bash tools/dist_launch.sh SCRIPT NPROC [SCRIPT's arguments ...]
# Several machines: set NNODES, NODE_RANK, MASTER_ADDR (and PORT) on each.
set -euo pipefail
SCRIPT=$1
NPROC=$2
shift 2
exec torchrun --nnodes="${NNODES:-1}" --node_rank="${NODE_RANK:-0}" \
    --master_addr="${MASTER_ADDR:-127.0.0.1}" --master_port="${PORT:-29500}" \
    --nproc_per_node="$NPROC" \
    "$(dirname "$0")/$SCRIPT" "$@" --launcher pytorch
