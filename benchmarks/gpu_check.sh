#!/usr/bin/env bash
# The one prepared script for a lent GPU machine (CuPy, Numba, PyTorch, pytest preinstalled;
# the repository copied there, not installed): first every CUDA kernel compiled by NVRTC
# and checked against NumPy's in float32 and float64 (seconds), then the test suite on the
# cupy backend, the GPU step benchmark, the synchronisations and launches per step, and one
# epoch of LeNet and of ResNet-18 (at 96, first 20480 images) on Fashion-MNIST for both
# engines; `book` (not in the default parts) trains the book's table (gpu_book.sh). The GPU machine has no Debian data package: copy the four
# IDX files to data/fashion-mnist first, and name `data` in the device call's carry when
# .git/info/exclude ignores it.
#
#   benchmarks/gpu_check.sh                    # every part, each under its own time limit
#   benchmarks/gpu_check.sh tests bench        # some parts: kernels tests bench syncs
#                                              # lenet resnet18 book
#
# Every part runs even when one fails or runs out of time (exit 124); each one's whole
# output goes to $OUT/NAME.log ($OUT: the folder the device machine sends back), or to
# /tmp/gpu-check, and its last lines are shown here.
set -uo pipefail
cd "$(dirname "$0")/.."
export MINICNN_DATA="${MINICNN_DATA:-$PWD/data/fashion-mnist}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
LOGS="${OUT:-/tmp/gpu-check}"
PARTS=" ${*:-kernels tests bench syncs lenet resnet18} "
mkdir -p "$LOGS"

# part NAME SECONDS COMMAND...: COMMAND under a time limit, if NAME (or NAME without its
# "-torch") was asked for
part() {
    local name=$1 limit=$2
    shift 2
    case "$PARTS" in *" ${name%-torch} "*) ;; *) return 0 ;; esac
    echo "== $name: $* (limit ${limit}s)"
    timeout "$limit" "$@" >"$LOGS/$name.log" 2>&1
    echo "== $name: exit $?"
    tail -n 25 "$LOGS/$name.log"
}

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
python -c "import sys, cupy, numpy, minicnn as mc
print('python', sys.version.split()[0], 'numpy', numpy.__version__, 'cupy', cupy.__version__)
print('backends:', mc.available_backends(), mc.backend.unavailable_reason('cupy') or '')"
[ -d "$MINICNN_DATA" ] || echo "warning: no $MINICNN_DATA: the training parts will fail"

# The default parts' limits add up to 9.5 minutes: one device call (10 at most) of a
# 15-minute lease with its start. `book` is a call of its own.
# pytest-xdist, where installed, spreads the tests over 4 processes sharing the one GPU.
XDIST=$(python -c "import xdist" 2>/dev/null && echo "-n 4")
part kernels 40 python -m pytest -q -rfE --tb=short -p no:cacheprovider tests/test_cuda_kernels.py \
    tests/ops tests/test_gradcheck_ops.py -k "(cupy or nvrtc) and not torch"
part tests 200 python -m pytest -q -rfE --tb=short -p no:cacheprovider $XDIST -k cupy tests
part bench 120 python benchmarks/bench_gpu.py --compare-slices
part lenet 45 python -m minicnn train lenet --backend cupy --epochs 1 --out /tmp/gpu-check-runs/lenet
part lenet-torch 35 python benchmarks/train_torch.py lenet --epochs 1 --device cuda
part resnet18 55 python -m minicnn train resnet18 --backend cupy --epochs 1 --resize 96 \
    --limit 20480 --out /tmp/gpu-check-runs/resnet18
part resnet18-torch 35 python benchmarks/train_torch.py resnet18 --epochs 1 --resize 96 \
    --limit 20480 --device cuda
# the emulation's counts, to set beside the device's timings (no GPU needed for these)
part syncs 40 python benchmarks/gpu_sync_counts.py --out "$LOGS/gpu_sync_counts.md"
part book 1800 bash benchmarks/gpu_book.sh
