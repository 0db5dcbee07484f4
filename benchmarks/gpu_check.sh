#!/usr/bin/env bash
# The one prepared script for a lent GPU machine (CuPy, PyTorch, pytest preinstalled):
# the test suite on the cupy backend, the GPU step benchmark, and one epoch of LeNet and
# of ResNet-18 (at 96) on Fashion-MNIST for both engines. The GPU machine has no Debian
# data package: copy the four IDX files to data/fashion-mnist first and carry that folder.
set -uo pipefail
cd "$(dirname "$0")/.."
export MINICNN_DATA="${MINICNN_DATA:-$PWD/data/fashion-mnist}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
python -c "import minicnn as mc; print('backends:', mc.available_backends())"
python -m pytest -q -x -k cupy tests 2>&1 | tail -15
python benchmarks/bench_gpu.py
python -m minicnn train lenet --backend cupy --epochs 1 --out /tmp/gpu-lenet | tail -3
python benchmarks/train_torch.py lenet --epochs 1 --device cuda | tail -2
python -m minicnn train resnet18 --backend cupy --epochs 1 --resize 96 --out /tmp/gpu-resnet18 | tail -3
python benchmarks/train_torch.py resnet18 --epochs 1 --resize 96 --device cuda | tail -2
