#!/usr/bin/env bash
# The book's table on a lent GPU: each named network's full recipe, by minicnn (cupy) and by
# PyTorch (cuda), one JSON line per run in benchmarks/results/book_runs.jsonl (and a copy
# in $OUT, the folder the device machine sends back). Each run has its own time limit.
#
#   benchmarks/gpu_book.sh lenet alexnet            # about ten minutes of GPU time
#   SEEDS=0,1,2 benchmarks/gpu_book.sh nin           # NiN's collapse, several seeds
#
# The GPU machine has no Debian data package: copy the four IDX files to data/fashion-mnist
# first (see gpu_check.sh).
set -uo pipefail
cd "$(dirname "$0")/.."
export MINICNN_DATA="${MINICNN_DATA:-$PWD/data/fashion-mnist}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
python benchmarks/gpu_book.py "$@" --seeds "${SEEDS:-0}" --timeout "${TIMEOUT:-600}"
if [ -n "${OUT:-}" ]; then cp benchmarks/results/book_runs.jsonl "$OUT/"; fi
