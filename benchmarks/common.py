"""What both benchmarks share: timing, peak memory, the machine and BLAS report, the
float32 GEMM rate that sets the lower limit, and markdown tables.

Timing: ``warmup`` untimed calls (Numba loads or compiles its kernels, PyTorch builds
its oneDNN primitives, the allocator settles), then ``repeat`` timed calls; the median
is reported, so a neighbour's burst on a shared machine moves it little.

Peak memory of a call: Linux keeps each process's peak resident set size (VmHWM) and
lets the process reset it to the current size (``echo 5 > /proc/self/clear_refs``).
So ``peak_rss_delta(fn)`` = VmHWM after ``fn`` - VmRSS before it: the most memory
``fn`` held at once beyond what was already resident (model, batch, optimizer state).
It counts every allocation, NumPy's and PyTorch's alike (tracemalloc sees only
Python's). For it to be exact, freed arrays must leave the resident set at once, so
the measuring process runs with ``MALLOC_MMAP_THRESHOLD_`` fixed (:data:`MEMORY_ENV`):
glibc then serves every block of 64 KiB or more with its own mmap and unmaps it on
free, instead of keeping freed blocks in its heap for the next step to reuse unseen.
Memory kept for the next step on purpose, the numba backend's buffer pool, is resident
before the step starts: bench_nets.py adds its resident pages (``resident_bytes``).
"""

from __future__ import annotations

import ctypes
import functools
import os
import platform
import statistics
import time
from collections.abc import Callable

import numpy

#: environment of a process that measures peak memory (see the module docstring)
MEMORY_ENV = {"MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TRIM_THRESHOLD_": "0"}


# ---- timing ---------------------------------------------------------------------------
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def time_calls(
    fn: Callable[[], object], warmup: int = 2, repeat: int = 5, clock: str = "wall"
) -> list[float]:
    """Seconds of each of ``repeat`` calls of ``fn``, after ``warmup`` untimed calls.

    ``clock="cpu"`` counts the CPU time of this process (every thread) instead of the
    wall clock: with one thread on a shared machine it is the time the call would take
    on an idle core, unmoved by neighbours; with several threads it adds them up.
    """
    now = CLOCKS[clock]
    for _ in range(warmup):
        fn()
    seconds = []
    for _ in range(repeat):
        start = now()
        fn()
        seconds.append(now() - start)
    return seconds


def median(values) -> float:
    return statistics.median(values)


# ---- memory ---------------------------------------------------------------------------
def _status_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def can_reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
        return True
    except OSError:
        return False


def peak_rss_delta(fn: Callable[[], object]) -> int:
    """Bytes: peak resident set size while ``fn`` runs, minus the resident size before."""
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")  # VmHWM := VmRSS
    before = _status_kib("VmRSS")
    fn()
    return (_status_kib("VmHWM") - before) * 1024


def resident_bytes(memory) -> int:
    """Bytes of the pages of ``memory`` (a buffer starting on a page) held in RAM:
    Linux's ``mincore``. A page of fresh memory is resident only once written."""
    array = numpy.frombuffer(memory, numpy.uint8)
    page = os.sysconf("SC_PAGE_SIZE")
    address = array.ctypes.data
    if address % page:
        raise ValueError(f"resident_bytes: memory at {address:#x} does not start on a page")
    pages = numpy.zeros(-(-array.nbytes // page), numpy.uint8)
    if _libc().mincore(address, array.nbytes, pages.ctypes.data) != 0:
        raise OSError(ctypes.get_errno(), "mincore failed")
    return int(numpy.count_nonzero(pages & 1)) * page


@functools.cache
def _libc():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
    return libc


# ---- the machine, BLAS and the GEMM rate ----------------------------------------------
def cpu_model() -> str:
    """The CPU's name, with its family and model and its widest vector unit: AMD names
    every EPYC "AMD EPYC" here, and a Zen 3 (AVX2) and a Zen 5 (AVX-512) differ 2x in
    the GEMM rate PyTorch's oneDNN reaches."""
    fields = {}
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                key, _, value = line.partition(":")
                fields.setdefault(key.strip(), value.strip())
    except OSError:
        return platform.processor() or platform.machine()
    name = fields.get("model name") or platform.processor() or platform.machine()
    flags = fields.get("flags", "").split()
    vector = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "no AVX2"
    return f"{name} (family {fields.get('cpu family', '?')}, model {fields.get('model', '?')}, {vector})"


def machine_line() -> str:
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    return (
        f"{cpu_model()}, {os.cpu_count()} logical cores, Linux {platform.release()}, "
        f"Python {platform.python_version()}; load average at start {load}"
    )


#: the variables that size a thread pool (minicnn/threads.py reads them too)
THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                    "NUMBA_NUM_THREADS")  # fmt: skip


def thread_env(threads: int) -> dict[str, str]:
    """Environment that gives every thread pool ``threads`` threads, set before the
    libraries load: the diagnostic runs with ``--threads``, never the default."""
    return dict.fromkeys(THREAD_VARIABLES, str(threads))


def limit_threads(threads: int) -> None:
    """Give this process's thread pools ``threads`` threads (minicnn's budget, and BLAS)."""
    from threadpoolctl import threadpool_limits

    import minicnn as mc

    threadpool_limits(threads)
    mc.set_num_threads(threads)


def blas_threads() -> int:
    """The number of threads NumPy's BLAS runs with (PyTorch is given the same)."""
    from threadpoolctl import threadpool_info

    for pool in threadpool_info():
        if pool["user_api"] == "blas" and "numpy" in pool["filepath"]:
            return int(pool["num_threads"])
    return os.cpu_count() or 1


def library_report(with_torch: bool, torch_threads: int | None = None) -> list[str]:
    """One line per thread pool that minicnn (and PyTorch) use: kernel, version, threads.

    ``torch_threads``: what the benchmark gives PyTorch (bench_nets with ``--threads``);
    None: PyTorch keeps its default, as a user gets it.
    """
    from threadpoolctl import threadpool_info

    import minicnn as mc
    from minicnn.threads import thread_pools

    lines = [f"numpy {numpy.__version__}"]
    for name in mc.available_backends():
        if name != "cupy":
            with mc.use_backend(name):
                lines.append(f"minicnn {name} backend: {mc.get_num_threads()} threads "
                             f"({', '.join(f'{k} {v}' for k, v in thread_pools().items())})")  # fmt: skip
    try:
        import numba

        lines.append(f"numba {numba.__version__} (its own thread pool unused)")
    except ImportError:
        pass
    if with_torch:
        import torch

        if torch_threads:
            torch.set_num_threads(torch_threads)  # as the benchmark workers do
        lines.append(
            f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
            f"oneDNN (mkldnn) {'available' if torch.backends.mkldnn.is_available() else 'absent'}"
        )
    for pool in threadpool_info():
        kernel = pool.get("architecture") or pool.get("corename") or ""
        where = os.path.basename(pool["filepath"])
        lines.append(
            f"{pool['internal_api']} {pool.get('version') or ''} {kernel} "
            f"({pool['user_api']}, {pool['num_threads']} threads now, {where})".replace("  ", " ")
        )
    thread_env = {k: v for k, v in os.environ.items() if k in THREAD_VARIABLES}
    lines.append(f"thread variables: {thread_env or 'none set'}")
    openblas_env = {k: v for k, v in os.environ.items() if k.startswith("OPENBLAS_")}
    lines.append(f"OPENBLAS_* environment: {openblas_env or 'none set'}")
    return lines


def gemm_rate(n: int = 2048, repeat: int = 5, clock: str = "wall") -> float:
    """FLOP/s of NumPy's float32 matrix product on (n, n) @ (n, n): 2 n^3 FLOPs each."""
    rng = numpy.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=numpy.float32)
    b = rng.standard_normal((n, n), dtype=numpy.float32)
    out = numpy.empty((n, n), dtype=numpy.float32)
    seconds = time_calls(lambda: numpy.matmul(a, b, out=out), 1, repeat, clock)
    return 2 * n**3 / median(seconds)


# ---- tables ---------------------------------------------------------------------------
def markdown_table(headers: list[str], rows: list[list]) -> str:
    """A markdown table; numbers right-aligned."""
    text = [[str(cell) for cell in row] for row in rows]
    widths = [max(len(h), *(len(r[k]) for r in text)) for k, h in enumerate(headers)]
    numeric = [all(_is_number(r[k]) for r in text) for k in range(len(headers))]

    def line(cells):
        return (
            "| "
            + " | ".join(
                c.rjust(w) if num else c.ljust(w)
                for c, w, num in zip(cells, widths, numeric, strict=True)
            )
            + " |"
        )

    rule = (
        "|"
        + "|".join(
            "-" * (w + 1) + ":" if num else "-" * (w + 2)
            for w, num in zip(widths, numeric, strict=True)
        )
        + "|"
    )
    return "\n".join([line(headers), rule, *map(line, text)])


def _is_number(text: str) -> bool:
    try:
        float(text.replace(",", "").rstrip("x%"))
        return True
    except ValueError:
        return text in ("", "-")
