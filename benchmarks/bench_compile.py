"""What Numba's compiling costs, and what ``cache=True`` saves a second process.

    python benchmarks/bench_compile.py

Runs ``NumbaBackend.warm_up()`` (every kernel, float32 and float64, on tiny inputs) in
two fresh processes that share an empty cache directory (``NUMBA_CACHE_DIR``): the
first compiles each kernel and stores the machine code, the second only loads it.
Prints a markdown table of seconds per kernel, and the import time of minicnn with
the numba backend in each process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)]

import common  # noqa: E402

WORKER = """
import json, time
start = time.perf_counter()
import minicnn as mc
backend = mc.get_backend("numba")
imported = time.perf_counter() - start
seconds = backend.warm_up()
print(json.dumps({"import": imported, "kernels": seconds}))
"""


def run_once(cache_dir: str) -> dict:
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
    result = subprocess.run([sys.executable, "-c", WORKER], env=env, capture_output=True,
                            text=True, check=True)  # fmt: skip
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    with tempfile.TemporaryDirectory() as cache_dir:
        first, second = run_once(cache_dir), run_once(cache_dir)
    print(f"Machine: {common.machine_line()}")
    rows = [
        [name, f"{first['kernels'][name]:.2f}", f"{second['kernels'][name]:.3f}"]
        for name in first["kernels"]
    ]
    rows.append(["total", f"{sum(first['kernels'].values()):.2f}",
                 f"{sum(second['kernels'].values()):.3f}"])  # fmt: skip
    rows.append(["import minicnn + numba", f"{first['import']:.2f}", f"{second['import']:.3f}"])
    print(common.markdown_table(["kernel (float32 + float64)", "compile s", "cached s"], rows))


if __name__ == "__main__":
    main()
