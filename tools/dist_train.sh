#!/usr/bin/env bash
# Distributed training on one machine with torchrun (mmengine's 'pytorch'
# launcher): bash tools/dist_train.sh CONFIG GPUS [train.py flags ...]
# Several machines: set NNODES, NODE_RANK, MASTER_ADDR (and PORT) on each.
set -euo pipefail
CONFIG=$1
GPUS=$2
shift 2
exec bash "$(dirname "$0")/misc/dist_launch.sh" train.py "$GPUS" "$CONFIG" "$@"
