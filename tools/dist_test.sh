#!/usr/bin/env bash
# Distributed testing on one machine with torchrun (mmengine's 'pytorch'
# launcher): bash tools/dist_test.sh CONFIG CHECKPOINT GPUS [test.py flags ...]
# Several machines: set NNODES, NODE_RANK, MASTER_ADDR (and PORT) on each.
set -euo pipefail
CONFIG=$1
CHECKPOINT=$2
GPUS=$3
shift 3
exec bash "$(dirname "$0")/misc/dist_launch.sh" test.py "$GPUS" "$CONFIG" "$CHECKPOINT" "$@"
