"""Host synchronisations and kernel launches per training step, for every network, on
the tests' CuPy emulation (tests/emulated_cupy): what a GPU pays for besides
arithmetic, counted on a machine without one.

    python benchmarks/gpu_sync_counts.py            # every network, a table on stdout
    python benchmarks/gpu_sync_counts.py --out benchmarks/results/gpu_sync_counts.md

A synchronisation is the host waiting for the device (``.item()``, ``float()``,
``int()``, ``bool()``, ``.get()``); a launch is one kernel: an elementwise operation, a
reduction, a product, a copy, or one of minicnn's CUDA kernels. Per step = the counts of
``fit`` over 4 steps minus those over 2 (both below the loop's read interval,
train.GPU_READ_EVERY, and with the same evaluation), halved. Launches are counted as
CuPy would issue them, one per array operation; cuBLAS may split a product into more.
"""

from __future__ import annotations

import argparse
import sys
import types
from pathlib import Path

import numpy

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import emulated_cupy  # noqa: E402 - after the path to the tests' equipment

emulated_cupy.install()

import minicnn as mc  # noqa: E402
from minicnn.data import DataLoader  # noqa: E402

#: Each network at a small side it accepts: the counts do not depend on the side.
SIZES = {"lenet": 28, "lenet_bn": 28, "alexnet": 193, "vgg11": 224, "nin": 67,
         "googlenet": 32, "resnet18": 32, "densenet": 32}  # fmt: skip


def data(steps: int, size: int, batch: int = 2):
    rng = numpy.random.default_rng(0)
    n = steps * batch
    train = types.SimpleNamespace(data=rng.integers(0, 256, (n, 28, 28), dtype=numpy.uint8),
                                  targets=rng.integers(0, 10, n))  # fmt: skip
    test = types.SimpleNamespace(data=train.data[:batch], targets=train.targets[:batch])
    resize = None if size == 28 else size
    return DataLoader(train, batch, shuffle=True, resize=resize), DataLoader(test, batch, resize=resize)


def counts(model: str, steps: int) -> tuple[int, int]:
    """(synchronisations, launches) of a one-epoch ``fit`` of ``steps`` steps."""
    with mc.use_backend("cupy"):
        mc.manual_seed(0)
        net = mc.models.get(model)
        train_iter, test_iter = data(steps, SIZES[model])
        emulated_cupy.reset()
        mc.train.fit(net, train_iter, test_iter, 1, 1e-3, progress=False, log=lambda line: None)
        return emulated_cupy.counters["synchronizations"], emulated_cupy.launches()


def layers(model: str) -> int:
    """The network's leaf modules (convolutions, pools, activations, norms, ...)."""
    return sum(1 for m in mc.models.get(model).modules() if not list(m.children()))


def table(models) -> str:
    rows = ["| network | side | layers | parameters | launches / step | launches / layer "
            "| synchronisations / step |", "|---|--:|--:|--:|--:|--:|--:|"]  # fmt: skip
    print("\n".join(rows), flush=True)
    for model in models:
        (sync2, launch2), (sync4, launch4) = counts(model, 2), counts(model, 4)
        per_step = (launch4 - launch2) / 2
        parameters = len(list(mc.models.get(model).parameters()))
        rows.append(f"| {model} | {SIZES[model]} | {layers(model)} | {parameters} | {per_step:.0f} "
                    f"| {per_step / layers(model):.1f} | {(sync4 - sync2) / 2:g} |")  # fmt: skip
        print(rows[-1], flush=True)
    return "\n".join(rows)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(SIZES), help="comma-separated networks")
    parser.add_argument("--out", help="also write the table (markdown) here")
    args = parser.parse_args(argv)
    models = args.models.split(",")
    for model in models:
        if model not in SIZES:
            parser.error(f"unknown network {model!r}; networks: {', '.join(SIZES)}")
    text = table(models)
    if args.out:
        Path(args.out).write_text(f"{__doc__.splitlines()[0]}\n\n{text}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
