"""The per-step Python overhead of a training step: how many operations a step is made
of, and what each costs when the arrays are too small to matter.

    python benchmarks/bench_overhead.py                 # every network, numpy backend
    python benchmarks/bench_overhead.py --backend numba --nets lenet,resnet18

A GPU step launches at least one kernel per operation, and the host's Python runs each
operation's bookkeeping (the Function call, shape checks, allocation) before the launch.
When that bookkeeping outlasts the kernels, the GPU waits for Python: the step costs
operations x per-operation overhead, whatever the GPU. This measures, on the CPU, where
no device is needed: the operations a step records (forward Functions, each called once
more by backward), and the step's time at batch 1 on the smallest input each network
takes. The quotient bounds the host's cost per operation from above (for the small
networks it is nearly all overhead; the wide ones still compute at batch 1): with each
operation launching a few kernels, it tells how far fusing operations or capturing the
step (CUDA graphs) can take a launch-bound GPU step.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import minicnn as mc  # noqa: E402
from minicnn.tensor import Function  # noqa: E402

SMALLEST = {"lenet": 28, "lenet_bn": 28, "alexnet": 193, "vgg11": 224, "nin": 67,
            "googlenet": 33, "resnet18": 33, "densenet": 29}  # fmt: skip


def operations_per_step(net, x, y) -> int:
    """The Functions one training step records (each runs forward once, backward once)."""
    calls = 0
    original = Function.__call__

    def counting(self, *inputs):
        nonlocal calls
        calls += 1
        return original(self, *inputs)

    Function.__call__ = counting
    try:
        mc.functional.cross_entropy(net(x), y).backward()
    finally:
        Function.__call__ = original
    return calls


def step_seconds(net, x, y, repeat: int) -> float:
    optimizer = mc.optim.SGD(net.parameters(), lr=0.01)

    def step():
        optimizer.zero_grad()
        mc.functional.cross_entropy(net(x), y).backward()
        optimizer.step()

    for _ in range(3):
        step()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return float(numpy.median(times))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nets", default=",".join(SMALLEST))
    parser.add_argument("--backend", default="numpy")
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args(argv)
    mc.use_backend(args.backend)
    print(f"backend {args.backend}, batch 1 at each network's smallest input, "
          f"median of {args.repeat} steps")  # fmt: skip
    print("| network | input | operations per step | step ms | us per operation (fwd + bwd) |")
    print("|---|--:|--:|--:|--:|")
    for name in args.nets.split(","):
        mc.manual_seed(0)
        net = mc.models.get(name)
        for module in net.modules():  # one image: batch norm needs more values per channel
            if isinstance(module, mc.nn.BatchNorm1d | mc.nn.BatchNorm2d):
                module.eval()
        size = SMALLEST[name]
        x = mc.tensor(numpy.random.default_rng(0).random((1, 1, size, size), dtype=numpy.float32))
        y = mc.tensor(numpy.array([3]))
        count = operations_per_step(net, x, y)
        seconds = step_seconds(net, x, y, args.repeat)
        print(f"| {name} | {size} | {count} | {seconds * 1e3:.2f} | {seconds * 1e6 / count:.0f} |",
              flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
