"""minicnn on CuPy against PyTorch on CUDA: one training step (forward, backward, SGD
update) of each network at batch 128 and the book's resolution, median of 5 after
warm-up, each step ending in a device synchronisation.

    python benchmarks/bench_gpu.py                    # on a machine with an NVIDIA GPU
    python benchmarks/bench_gpu.py --device cpu --nets lenet --batch 8   # the harness, on a CPU

Prints a markdown table: network, minicnn ms, PyTorch ms, ratio (target: <= 3, PyTorch
uses cuDNN, minicnn im2col + cuBLAS); with ``--compare-slices`` also minicnn with its
sliding windows as the NumPy kernels' strided slices instead of its CUDA kernels. Both
compute in true float32: PyTorch's TF32 convolutions are turned off, as CuPy uses no
TF32 unless CUPY_TF32=1. On the CPU the
same code times minicnn's numpy backend against PyTorch CPU, to check the harness where
no GPU is at hand.
"""

import argparse
import pathlib
import statistics
import sys
import time

import numpy
import torch

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # minicnn, installed or not; the torch models
import torch_models  # noqa: E402

import minicnn as mc  # noqa: E402


def timed(step, synchronize, warmup=2, repeat=5) -> float:
    """Median seconds of ``repeat`` steps after ``warmup`` steps, each synchronised."""
    for _ in range(warmup):
        step()
    synchronize()
    seconds = []
    for _ in range(repeat):
        start = time.perf_counter()
        step()
        synchronize()
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds)


def batch(size, resolution):
    rng = numpy.random.default_rng(0)
    x = rng.standard_normal((size, 1, resolution, resolution), dtype=numpy.float32)
    return x, rng.integers(0, 10, size=size, dtype=numpy.int64)


def minicnn_step(name, size, backend):
    with mc.use_backend(backend):
        mc.manual_seed(0)
        net = mc.models.get(name)  # parameters created on the active backend
        x, y = batch(size, net.resolution)
        x, y = mc.tensor(x), mc.tensor(y)  # copied to the device once, before timing
    loss_fn, optimizer = mc.nn.CrossEntropyLoss(), mc.optim.SGD(net.parameters(), lr=0.01)

    def step():
        with mc.use_backend(backend):
            optimizer.zero_grad()
            loss_fn(net(x), y).backward()
            optimizer.step()

    return step, net.resolution


def torch_step(name, size, resolution, device):
    torch.manual_seed(0)
    net = getattr(torch_models, name)().to(device)
    x, y = batch(size, resolution)
    x, y = torch.from_numpy(x).to(device), torch.from_numpy(y).to(device)
    loss_fn, optimizer = torch.nn.CrossEntropyLoss(), torch.optim.SGD(net.parameters(), lr=0.01)

    def step():
        optimizer.zero_grad()
        loss_fn(net(x), y).backward()
        optimizer.step()

    return step


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nets", default=",".join(mc.models.names()))
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument(
        "--compare-slices", action="store_true",
        help="also time the cupy backend on the NumPy kernels' strided slices "
        "(cuda_kernels = False) instead of its CUDA window kernels",
    )  # fmt: skip
    args = parser.parse_args()
    backend = "cupy" if args.device == "cuda" else "numpy"
    if args.device == "cuda":
        import cupy

        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
        sync_minicnn = cupy.cuda.Device().synchronize
        sync_torch = torch.cuda.synchronize
        print(
            f"GPU: {torch.cuda.get_device_name()}; CuPy {cupy.__version__}, PyTorch {torch.__version__}"
        )
    else:
        sync_minicnn = sync_torch = lambda: None
    slices = args.compare_slices and backend == "cupy"
    extra = " minicnn slices ms | slices ratio |" if slices else ""
    print(
        f"\n| network | batch | resolution | minicnn-{backend} ms | pytorch-{args.device} ms "
        f"| ratio |{extra}"
    )
    print("|---|---|---|---|---|---|" + "---|---|" * slices)
    for name in args.nets.split(","):
        step, resolution = minicnn_step(name, args.batch, backend)
        mine = timed(step, sync_minicnn)
        theirs = timed(torch_step(name, args.batch, resolution, args.device), sync_torch)
        row = f"| {name} | {args.batch} | {resolution} | {1e3 * mine:.1f} | {1e3 * theirs:.1f} | "
        row += f"{mine / theirs:.2f} |"
        if slices:
            gpu = mc.get_backend("cupy")
            gpu.cuda_kernels = False
            try:
                sliced = timed(step, sync_minicnn)
            finally:
                gpu.cuda_kernels = True
            row += f" {1e3 * sliced:.1f} | {sliced / theirs:.2f} |"
        print(row, flush=True)
        del step  # one network's memory at a time on the device
        if args.device == "cuda":
            cupy.get_default_memory_pool().free_all_blocks()
            torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
