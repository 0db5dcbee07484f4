"""One training step of each network, minicnn's CPU backends beside PyTorch CPU.

    python benchmarks/bench_nets.py --rounds 3                     # every network, as shipped
    python benchmarks/bench_nets.py --nets lenet,resnet18 --batch 32 --repeat 5
    python benchmarks/bench_nets.py --threads 1 --clock cpu        # the 1-thread diagnosis
    python benchmarks/bench_nets.py --versus-one-thread --no-torch # default threads over 1

A step is what training does per batch: zero the gradients, forward, cross-entropy
loss, backward, SGD update, on float32 random images at the book's resolution (batch
32; LeNet and LeNet-BN also at 256 unless ``--batch`` is given). Each (engine, network,
batch) runs in fresh processes: one times ``--repeat`` steps after ``--warmup`` steps
(median reported), another measures the peak memory of one step after a warm-up
(common.peak_rss_delta: the most memory the step holds beyond the model, batch and
optimizer already resident, gradients zeroed: activations, gradients, temporaries; for
the numba backend plus what its buffer pool keeps between steps).

By default every engine runs as a user gets it: no thread variables added, each on its
default threads (all the cores this process may use), timed by the wall clock. With
``--threads N`` every engine gets N threads instead (the thread variables, BLAS,
``mc.set_num_threads``, ``torch.set_num_threads``): with ``--threads 1 --clock cpu``,
a diagnosis of single-core speed that neighbours on a shared machine barely move.
``--versus-one-thread`` also times each minicnn engine with 1 thread (the thread
variables set to 1, in processes of their own, in turn with the default's in every
round), and adds the column "default / 1 thread": above 1, more threads were slower.

The lower limit of a step is 3 x its forward FLOPs (forward, and backward's two
products per layer) at the float32 GEMM rate measured here; "of limit" is that time
over the measured one, the fraction of the machine's matrix-product speed a step reaches.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(Path(__file__).resolve().parent)]

import common  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

import minicnn as mc  # noqa: E402
from minicnn.threads import available_cores  # noqa: E402

LARGE_BATCH_NETS = ("lenet", "lenet_bn")


# ---- one engine, one network: run inside a worker process -----------------------------
def minicnn_step(backend: str, name: str, batch: int):
    """A closure that runs one minicnn training step."""
    mc.use_backend(backend)
    mc.manual_seed(0)
    net = mc.models.get(name)
    x, y = _batch(batch, net.resolution)
    x, y = mc.as_tensor(x), mc.as_tensor(y)
    loss_fn = mc.nn.CrossEntropyLoss()
    optimizer = mc.optim.SGD(net.parameters(), lr=0.01)

    def step():
        optimizer.zero_grad()
        loss_fn(net(x), y).backward()
        optimizer.step()

    return step, optimizer.zero_grad


def torch_step(name: str, batch: int):
    import torch
    import torch_models

    if os.environ.get("OMP_NUM_THREADS"):  # the driver's --threads; else torch's default
        torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    torch.manual_seed(0)
    net = getattr(torch_models, name)()
    x, y = _batch(batch, RESOLUTIONS[name])
    x, y = torch.from_numpy(x), torch.from_numpy(y)
    loss_fn = torch.nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01)

    def step():
        optimizer.zero_grad()
        loss_fn(net(x), y).backward()
        optimizer.step()

    return step, optimizer.zero_grad


# The book's input sizes (each network's .resolution), known without building it.
RESOLUTIONS = {
    "lenet": 28, "lenet_bn": 28, "alexnet": 224, "vgg11": 224,
    "nin": 224, "googlenet": 96, "resnet18": 96, "densenet": 96,
}  # fmt: skip


def _batch(batch: int, resolution: int):
    rng = numpy.random.default_rng(0)
    x = rng.standard_normal((batch, 1, resolution, resolution), dtype=numpy.float32)
    return x, rng.integers(0, 10, size=batch, dtype=numpy.int64)


def worker(engine, name, batch, mode, warmup, repeat, clock) -> dict:
    start = time.perf_counter()
    builder = torch_step if engine == "torch" else functools.partial(minicnn_step, engine)
    step, zero_grad = builder(name, batch)
    build = time.perf_counter() - start
    start = time.perf_counter()
    step()  # the first step: Numba loads (or compiles) its kernels, torch its primitives
    first = time.perf_counter() - start
    if mode == "memory":  # from the model, batch and optimizer alone: no gradients yet
        step()
        zero_grad()
        pooled = _pooled_bytes(engine)  # resident before the step, but kept for steps
        return {"peak_bytes": common.peak_rss_delta(step) + pooled, "first_step_s": first}
    seconds = common.time_calls(step, max(warmup - 1, 0), repeat, clock)
    return {"seconds": seconds, "build_s": build, "first_step_s": first}


def _pooled_bytes(engine: str) -> int:
    """What the numba backend's buffer pool holds from earlier steps (engine_room/allocator.py):
    part of a step's memory, though it is resident before the step starts. Its pages
    that are resident count, not its segments' sizes: the pages of a segment no request
    ever reached take no memory."""
    pool = getattr(mc.get_backend(engine), "pool", None) if engine != "torch" else None
    return sum(map(common.resident_bytes, pool.segments)) if pool is not None else 0


# ---- the driver: one fresh process per measurement ------------------------------------
def run_worker(engine, name, batch, mode, args, threads=None) -> dict:
    """Run one measurement in a fresh process, on ``threads`` (default: ``--threads``, or
    the engine's own default)."""
    command = [sys.executable, __file__, "--worker", engine, name, str(batch), mode,
               "--warmup", str(args.warmup), "--repeat", str(args.repeat), "--clock", args.clock]  # fmt: skip
    threads = threads or args.threads
    env = dict(os.environ, **(common.thread_env(threads) if threads else {}))
    env.update(common.MEMORY_ENV if mode == "memory" else {})
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        raise RuntimeError(f"{engine} {name} {batch} {mode} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def forward_flops(name: str, batch: int) -> int:
    """Forward FLOPs of a batch: mc.summary's count for one image, times the batch."""
    with mc.use_backend("numpy"):
        net = mc.models.get(name)
        return batch * mc.summary(net, (1, 1, net.resolution, net.resolution)).total_flops


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nets", default=",".join(mc.models.names()))
    parser.add_argument("--batch", type=int, help="one batch size for every network")
    parser.add_argument(
        "--backends", default=",".join(b for b in mc.available_backends() if b != "cupy")
    )
    parser.add_argument("--no-torch", action="store_true", help="leave PyTorch out")
    parser.add_argument(
        "--threads",
        type=int,
        help="threads for every engine (default: each engine's own default, all cores)",
    )
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="time each engine this many times, in turn (fresh processes)",
    )
    parser.add_argument("--no-memory", action="store_true", help="time only")
    parser.add_argument(
        "--clock",
        choices=common.CLOCKS,
        default="wall",
        help="cpu: process CPU time (steady on a shared machine, with --threads 1)",
    )
    parser.add_argument(
        "--versus-one-thread",
        action="store_true",
        help="also time minicnn's engines on 1 thread: the default's time over it",
    )
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument(
        "--worker", nargs=4, metavar=("ENGINE", "NET", "BATCH", "MODE"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)

    if args.worker:
        engine, name, batch, mode = args.worker
        result = worker(engine, name, int(batch), mode, args.warmup, args.repeat, args.clock)
        print(json.dumps(result))
        return

    engines = [b for b in args.backends.split(",") if b] + ([] if args.no_torch else ["torch"])
    cases = []
    for name in args.nets.split(","):
        batches = [args.batch] if args.batch else [32] + ([256] if name in LARGE_BATCH_NETS else [])
        cases += [(name, b) for b in batches]

    if args.threads:
        common.limit_threads(args.threads)  # this process: the report
    memory = not args.no_memory and common.can_reset_peak()
    gemm_threads = args.threads or available_cores()
    with threadpool_limits(gemm_threads, user_api="blas"):  # the machine's rate, all threads
        rate = common.gemm_rate(clock=args.clock)
    header = _header(rate, gemm_threads, engines, memory, args.clock, args.threads)
    print(header, flush=True)
    results = []
    for name, batch in cases:
        limit_s = 3 * forward_flops(name, batch) / rate
        seconds = {engine: [] for engine in engines}
        one_thread = {engine: [] for engine in engines if engine != "torch"}
        for _ in range(args.rounds):  # engines in turn, so that a neighbour's burst hits all
            for engine in engines:
                seconds[engine] += run_worker(engine, name, batch, "time", args)["seconds"]
                if args.versus_one_thread and engine in one_thread:
                    one_thread[engine] += run_worker(engine, name, batch, "time", args, 1)["seconds"]
        for engine in engines:
            peak = run_worker(engine, name, batch, "memory", args)["peak_bytes"] if memory else None
            results.append({
                "net": name, "batch": batch, "resolution": RESOLUTIONS[name], "engine": engine,
                "median_s": common.median(seconds[engine]), "seconds": seconds[engine],
                "peak_bytes": peak, "limit_s": limit_s,
                "one_thread_s": common.median(one_thread[engine]) if one_thread.get(engine) else None,
            })  # fmt: skip
            print(f"  {name} b{batch} {engine}: {results[-1]['median_s'] * 1e3:.1f} ms"
                  + (f", peak {peak / 2**20:.0f} MB" if peak is not None else ""),
                  file=sys.stderr, flush=True)  # fmt: skip
    print(table(results))
    if args.json:
        Path(args.json).write_text(json.dumps({"header": header, "results": results}, indent=1))


def _header(rate: float, gemm_threads: int, engines, memory: bool, clock: str,
            threads: int | None) -> str:  # fmt: skip
    threads_line = (
        f"Threads: {threads} for every engine (thread variables, BLAS, mc.set_num_threads, "
        f"torch.set_num_threads)" if threads
        else "Threads: each engine's default, no thread variables added (as a user runs it)"
    )  # fmt: skip
    lines = [
        f"Machine: {common.machine_line()}",
        f"float32 GEMM rate (NumPy, 2048^3, {gemm_threads} BLAS threads): "
        f"{rate / 1e9:.1f} GFLOP/s",
        f"{threads_line}; {clock} clock",
        *(f"- {line}" for line in common.library_report("torch" in engines, threads)),
        "Peak memory: " + ("VmHWM - VmRSS across one step (see benchmarks/common.py)" if memory
                           else "not measured (no /proc/self/clear_refs)"),
    ]  # fmt: skip
    return "\n".join(lines)


def table(results: list[dict]) -> str:
    torch_rows = {(r["net"], r["batch"]): r for r in results if r["engine"] == "torch"}
    rows = []
    for r in results:
        ref = torch_rows.get((r["net"], r["batch"]))
        ratio = f"{r['median_s'] / ref['median_s']:.2f}" if ref else "-"
        peak = r["peak_bytes"]
        mem_ratio = f"{peak / ref['peak_bytes']:.2f}" if ref and peak and ref["peak_bytes"] else "-"
        rows.append([
            r["net"], r["batch"], r["resolution"], r["engine"],
            f"{r['median_s'] * 1e3:.1f}", f"{r['batch'] / r['median_s']:.0f}", ratio,
            "-" if peak is None else f"{peak / 2**20:.0f}", mem_ratio,
            f"{r['limit_s'] * 1e3:.1f}", f"{r['limit_s'] / r['median_s']:.2f}",
        ])  # fmt: skip
    headers = ["network", "batch", "res", "engine", "ms/step", "images/s", "time / torch",
               "peak MB", "memory / torch", "limit ms", "of limit"]  # fmt: skip
    if any(r.get("one_thread_s") for r in results):
        headers += ["1 thread ms", "default / 1 thread"]
        for row, r in zip(rows, results, strict=True):
            one = r.get("one_thread_s")
            row += [f"{one * 1e3:.1f}", f"{r['median_s'] / one:.2f}"] if one else ["-", "-"]
    return common.markdown_table(headers, rows)


if __name__ == "__main__":
    main()
