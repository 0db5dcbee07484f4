"""The layers of the networks one by one: convolutions, pooling and batch norm,
forward and backward timed separately, minicnn's CPU backends beside PyTorch CPU.

    python benchmarks/bench_ops.py                                  # every network's layers
    python benchmarks/bench_ops.py --nets resnet18 --ops conv --batch 32 --repeat 5
    python benchmarks/bench_ops.py --backends numba --threads 1 --json ops.json

The shapes are the ones each network meets at the book's resolution and ``--batch``
(found by running it once); a shape met several times is timed once and counted
("uses"). Forward and backward are the autograd Function's own: minicnn's
``Function.forward``/``backward`` on arrays, PyTorch's module call and
``torch.autograd.grad`` of its output. Training mode throughout (batch statistics).
A convolution's lower limit is its FLOPs (x 1 forward, x 2 backward: dW and dx) at
the float32 GEMM rate measured here.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(Path(__file__).resolve().parent)]

import common  # noqa: E402

import minicnn as mc  # noqa: E402
from minicnn.functional.conv import Conv2d  # noqa: E402
from minicnn.functional.norm import BatchNorm  # noqa: E402
from minicnn.functional.pool import AvgPool2d, MaxPool2d  # noqa: E402

KINDS = {"conv": mc.nn.Conv2d, "maxpool": mc.nn.MaxPool2d, "avgpool": mc.nn.AvgPool2d,
         "bn": mc.nn.BatchNorm2d}  # fmt: skip


# ---- which layers the networks run --------------------------------------------------
def layer_shapes(name: str, batch: int, kinds) -> list[tuple]:
    """(kind, input shape, arguments, first) of every layer of ``kinds`` in network ``name``,
    in the order it runs them, found by one forward pass of a single image. ``first`` marks
    the layer that reads the image itself: training needs no gradient for its input."""
    net = mc.models.get(name)
    image = mc.tensor(numpy.zeros((1, 1, net.resolution, net.resolution), dtype=numpy.float32))
    found = []
    for module in net.modules():
        kind = next((k for k in kinds if type(module) is KINDS[k]), None)
        if kind is not None:
            _record(module, kind, batch, image, found)
    net.eval()  # batch norm takes a single image in evaluation mode
    with mc.no_grad():
        net(image)
    for module in net.modules():
        module.__dict__.pop("forward", None)
    return found


def _record(module, kind, batch, image, found) -> None:
    original = module.forward

    def forward(x):
        shape = (batch, *x.shape[1:])
        if kind == "conv":
            arguments = (tuple(module.weight.shape), module.stride, module.padding)
        elif kind == "bn":
            arguments = ()
        else:
            stride = module.stride if module.stride is not None else module.kernel_size
            arguments = (module.kernel_size, stride, module.padding)
        found.append((kind, shape, arguments, x is image))
        return original(x)

    object.__setattr__(module, "forward", forward)  # shadows the class's, removed afterwards


# ---- timing one layer -----------------------------------------------------------------
def minicnn_times(kind, shape, arguments, first, backend, warmup, repeat, clock):
    """Median seconds of the Function's forward and of its backward, on ``backend``."""
    rng = numpy.random.default_rng(0)
    x = rng.standard_normal(shape, dtype=numpy.float32)
    with mc.use_backend(backend):
        if kind == "conv":
            weight_shape, stride, padding = arguments
            weight = rng.standard_normal(weight_shape, dtype=numpy.float32)
            inputs = (x, weight, rng.standard_normal(weight_shape[0], dtype=numpy.float32))
            make = lambda: Conv2d(stride, padding)  # noqa: E731
        elif kind == "bn":
            channels = shape[1]
            inputs = (x, numpy.ones(channels, numpy.float32), numpy.zeros(channels, numpy.float32))
            running = (numpy.zeros(channels, numpy.float32), numpy.ones(channels, numpy.float32))
            make = lambda: BatchNorm(*running, True, 0.1, 1e-5, affine=True)  # noqa: E731
        else:
            kernel, stride, padding = arguments
            inputs = (x,)
            if kind == "maxpool":
                make = lambda: MaxPool2d(kernel, stride, padding)  # noqa: E731
            else:
                make = lambda: AvgPool2d(kernel, stride, padding, True)  # noqa: E731
        fn = make()
        fn.needs_input_grad = (not first,) + (True,) * (len(inputs) - 1)
        forward = common.time_calls(lambda: fn.forward(*inputs), warmup, repeat, clock)
        gy = rng.standard_normal(fn.forward(*inputs).shape, dtype=numpy.float32)
        backward = common.time_calls(lambda: fn.backward(gy), warmup, repeat, clock)
    return common.median(forward), common.median(backward)


def torch_times(kind, shape, arguments, first, warmup, repeat, clock):
    import torch

    torch.manual_seed(0)
    x = torch.randn(shape, requires_grad=not first)
    if kind == "conv":
        weight_shape, stride, padding = arguments
        layer = torch.nn.Conv2d(weight_shape[1], weight_shape[0], weight_shape[2:], stride, padding)
    elif kind == "bn":
        layer = torch.nn.BatchNorm2d(shape[1])
    elif kind == "maxpool":
        layer = torch.nn.MaxPool2d(*arguments)
    else:
        layer = torch.nn.AvgPool2d(*arguments)
    inputs = (*([] if first else [x]), *layer.parameters())
    forward = common.time_calls(lambda: layer(x), warmup, repeat, clock)
    y = layer(x)
    gy = torch.randn_like(y)
    backward = common.time_calls(
        lambda: torch.autograd.grad(y, inputs, gy, retain_graph=True), warmup, repeat, clock
    )
    return common.median(forward), common.median(backward)


def conv_flops(shape, arguments) -> int:
    (oc, c, kh, kw), stride, padding = arguments
    n, _, h, w = shape
    oh = (h + 2 * padding[0] - kh) // stride[0] + 1
    ow = (w + 2 * padding[1] - kw) // stride[1] + 1
    return 2 * oc * c * kh * kw * n * oh * ow


def describe(kind, shape, arguments, first) -> str:
    text = f"{kind} {'x'.join(map(str, shape))}"
    if kind == "conv":
        (oc, _, kh, kw), stride, padding = arguments
        return f"{text} -> {oc}, {kh}x{kw} s{stride[0]} p{padding[0]}" + (
            " (no dx)" if first else ""
        )
    if kind == "bn":
        return text
    kernel, stride, padding = (common_pair(a) for a in arguments)
    return f"{text}, {kernel[0]}x{kernel[1]} s{stride[0]} p{padding[0]}"


def common_pair(value):
    return (value, value) if isinstance(value, int) else tuple(value)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nets", default=",".join(mc.models.names()))
    parser.add_argument("--ops", default=",".join(KINDS), help=f"some of {', '.join(KINDS)}")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument(
        "--backends", default=",".join(b for b in mc.available_backends() if b != "cupy")
    )
    parser.add_argument("--no-torch", action="store_true")
    parser.add_argument("--threads", type=int, default=common.blas_threads())
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument(
        "--clock",
        choices=common.CLOCKS,
        default="wall",
        help="cpu: process CPU time (steady on a shared machine, with --threads 1)",
    )
    parser.add_argument("--json")
    args = parser.parse_args(argv)

    common.limit_threads(args.threads)
    backends = [b for b in args.backends.split(",") if b]
    with_torch = not args.no_torch
    rate = common.gemm_rate(clock=args.clock)
    header = "\n".join([
        f"Machine: {common.machine_line()}",
        f"float32 GEMM rate (NumPy, 2048^3): {rate / 1e9:.1f} GFLOP/s; {args.threads} threads; "
        f"{args.clock} clock",
        *(f"- {line}" for line in common.library_report(with_torch, args.threads)),
    ])  # fmt: skip
    print(header, flush=True)

    uses: dict[tuple, list[str]] = {}
    for name in args.nets.split(","):
        for layer in layer_shapes(name, args.batch, args.ops.split(",")):
            uses.setdefault(layer, []).append(name)
    results = []
    for (kind, shape, arguments, first), nets in uses.items():
        row = {"op": describe(kind, shape, arguments, first), "nets": sorted(set(nets)),
               "uses": len(nets), "times": {}}  # fmt: skip
        for backend in backends:
            row["times"][backend] = minicnn_times(kind, shape, arguments, first, backend,
                                                  args.warmup, args.repeat, args.clock)  # fmt: skip
        if with_torch:
            row["times"]["torch"] = torch_times(
                kind, shape, arguments, first, args.warmup, args.repeat, args.clock
            )
        row["limit_s"] = conv_flops(shape, arguments) / rate if kind == "conv" else None
        row["passes"] = 2 if first else 3  # forward, dW (and dx)
        results.append(row)
        print("  " + row["op"], {k: [f"{t * 1e3:.1f}" for t in v] for k, v in row["times"].items()},
              file=sys.stderr, flush=True)  # fmt: skip
    print(table(results, backends + (["torch"] if with_torch else [])))
    if args.json:
        Path(args.json).write_text(json.dumps({"header": header, "results": results}, indent=1))


def table(results, engines) -> str:
    headers = ["layer", "nets", "uses"]
    for engine in engines:
        headers += [f"{engine} fwd ms", f"{engine} bwd ms"]
    ratio_engines = [e for e in engines if e != "torch"] if "torch" in engines else []
    headers += [f"{e} / torch" for e in ratio_engines] + ["limit ms (fwd+bwd)"]
    rows = []
    totals = dict.fromkeys(engines, 0.0)
    for r in results:
        cells = [r["op"], ",".join(r["nets"]), r["uses"]]
        for engine in engines:
            forward, backward = r["times"][engine]
            cells += [f"{forward * 1e3:.2f}", f"{backward * 1e3:.2f}"]
            totals[engine] += r["uses"] * (forward + backward)
        for engine in ratio_engines:
            cells.append(f"{sum(r['times'][engine]) / sum(r['times']['torch']):.2f}")
        cells.append("-" if r["limit_s"] is None else f"{r['passes'] * r['limit_s'] * 1e3:.2f}")
        rows.append(cells)
    total_cells = ["total (x uses)", "", ""]
    for engine in engines:
        total_cells += [f"{totals[engine] * 1e3:.1f}", ""]
    total_cells += [f"{totals[e] / totals['torch']:.2f}" for e in ratio_engines] + [""]
    rows.append(total_cells)
    return common.markdown_table(headers, rows)


if __name__ == "__main__":
    main()
