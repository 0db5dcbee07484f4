"""The book's table, trained fully: each network's whole recipe, by minicnn and by PyTorch,
one JSON line per run appended to ``benchmarks/results/book_runs.jsonl``.

    python benchmarks/gpu_book.py lenet alexnet              # on the GPU: cupy and cuda
    python benchmarks/gpu_book.py nin --seeds 0,1,2          # several seeds (NiN's collapse)
    python benchmarks/gpu_book.py lenet --device cpu --epochs 1 --limit 512   # a dry run

Each run is its own process under its own time limit (``--timeout``, default 600 s, so
that each part fits a lent GPU's session): ``minicnn train MODEL --backend cupy`` and
``benchmarks/train_torch.py MODEL --device cuda``, the same recipe, seed and files. The
line holds what the table needs and what makes runs on different days and GPUs add up::

    engine ("minicnn" or "torch"), model, device (the GPU's name, or the CPU's), backend,
    epochs, seed, seconds (wall, start to exit), loss, train_acc, test_acc,
    examples_per_sec, libraries (versions), date, exit (0, or why it stopped)

A run that fails or runs out of time is recorded too, with its exit status and no
accuracy, so that a table built from the file shows it instead of leaving it out.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "book_runs.jsonl"
FINAL = re.compile(r"loss ([\d.naif]+), train acc ([\d.]+), test acc ([\d.]+)\s+([\d.]+) examples/sec")


def command(engine: str, model: str, args, seed: int) -> list[str]:
    """The process that trains ``model`` with ``engine``, as a user would start it."""
    common = []
    for flag in ("epochs", "limit"):
        if getattr(args, flag) is not None:
            common += [f"--{flag}", str(getattr(args, flag))]
    if engine == "minicnn":
        out = ROOT / "runs" / "book" / f"{model}-seed{seed}"
        return [sys.executable, "-m", "minicnn", "train", model, "--backend", args.backend,
                "--seed", str(seed), "--out", str(out), *common]  # fmt: skip
    device = "cuda" if args.device == "gpu" else "cpu"
    return [sys.executable, str(ROOT / "benchmarks" / "train_torch.py"), model,
            "--device", device, "--seed", str(seed), *common]  # fmt: skip


def device_name(device: str) -> str:
    if device == "gpu":
        try:
            query = ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"]
            return subprocess.run(query, capture_output=True, text=True, check=True).stdout.splitlines()[0]
        except (OSError, subprocess.CalledProcessError, IndexError):
            return "unknown GPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def libraries() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in ("numpy", "numba", "cupy", "torch", "minicnn"):
        try:
            versions[name] = __import__(name).__version__
        except ImportError:
            pass
    return versions


def run(engine: str, model: str, args, seed: int) -> dict:
    """Train once; the JSON line of the run."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    start = time.perf_counter()
    try:
        done = subprocess.run(command(engine, model, args, seed), capture_output=True, text=True,
                              cwd=ROOT, env=env, timeout=args.timeout)  # fmt: skip
        output, status = done.stdout + done.stderr, done.returncode
    except subprocess.TimeoutExpired as expired:
        output = (expired.stdout or b"").decode() if isinstance(expired.stdout, bytes) else expired.stdout or ""
        status = f"timeout after {args.timeout} s"
    seconds = time.perf_counter() - start
    epochs = re.findall(r"^epoch (\d+):", output, re.MULTILINE)
    final = FINAL.search(output)
    record = dict(
        engine=engine, model=model, device=device_name(args.device),
        backend=args.backend if engine == "minicnn" else ("cuda" if args.device == "gpu" else "cpu"),
        epochs=int(epochs[-1]) if epochs else 0, seed=seed, seconds=round(seconds, 1),
        loss=None, train_acc=None, test_acc=None, examples_per_sec=None,
        libraries=libraries(), date=datetime.date.today().isoformat(), exit=status,
        limit=args.limit,
    )  # fmt: skip
    if final:
        loss, train_acc, test_acc, speed = final.groups()
        record.update(loss=float(loss), train_acc=float(train_acc), test_acc=float(test_acc),
                      examples_per_sec=float(speed))  # fmt: skip
    if status != 0:
        record["tail"] = output[-2000:]
    return record


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="+")
    parser.add_argument("--engines", default="minicnn,torch")
    parser.add_argument("--seeds", default="0", help="comma-separated")
    parser.add_argument("--device", choices=["gpu", "cpu"], default="gpu")
    parser.add_argument("--backend", help="minicnn's backend (default: cupy on gpu, numba on cpu)")
    parser.add_argument("--epochs", type=int, help="default: the recipe's 10")
    parser.add_argument("--limit", type=int, help="only the first LIMIT images (a dry run)")
    parser.add_argument("--timeout", type=int, default=600, help="seconds per run")
    parser.add_argument("--out", default=str(RESULTS), help="the JSON-lines file to append to")
    args = parser.parse_args(argv)
    args.backend = args.backend or ("cupy" if args.device == "gpu" else "numba")
    for model in args.models:
        for seed in (int(s) for s in args.seeds.split(",")):
            for engine in args.engines.split(","):
                record = run(engine, model, args, seed)
                with open(args.out, "a") as file:
                    file.write(json.dumps(record) + "\n")
                print(f"{engine:8} {model:10} seed {seed}: exit {record['exit']}, "
                      f"{record['seconds']} s, test acc {record['test_acc']}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
