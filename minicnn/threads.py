"""How many CPU threads minicnn computes with: one budget, ``n`` threads, for all its work.

Two libraries bring thread pools to a CPU training step: BLAS (NumPy's matrix products,
usually OpenBLAS) and Numba. Left to themselves, each starts a thread per core and keeps
its idle threads *spinning*, polling for the next task. On a machine with 2 cores, 2 + 2
threads then take turns at the cores, and every matrix product waits for the other
pool's spinners to give up their time slice: a LeNet step took 70 ms instead of 5. So
minicnn owns the budget and gives the cores to one pool at a time:

- the numba backend (the fast path) runs its own team of ``n`` threads
  (engine_room/team.py): each thread computes its part of a layer, its matrix products on
  one BLAS thread, its compiled loops on itself. BLAS is held to 1 thread and Numba's
  pool is never started, so nothing spins while the team computes;
- the numpy backend (the reference) runs on the calling thread, with ``n`` BLAS threads.

By default ``n`` is the number of cores this process may run on (``os.sched_getaffinity``:
``taskset``'s or a cpuset's limit, not the machine's count; a CPU *quota*, such as
``docker --cpus``, is not seen there: set ``OMP_NUM_THREADS`` or ``--threads`` then). The usual variables win
when set, each for the pool it names: ``NUMBA_NUM_THREADS`` for the numba backend's team,
``OPENBLAS_NUM_THREADS`` or ``MKL_NUM_THREADS`` for the numpy backend's BLAS, and
``OMP_NUM_THREADS`` for both where those are unset. :func:`set_num_threads` (``--threads``
on the command line) overrides them all, as ``torch.set_num_threads`` does.
"""

from __future__ import annotations

import os

__all__ = ["get_num_threads", "set_num_threads", "thread_pools"]

#: variables that set the size of a thread pool, and the pools each one sets; for each
#: pool the first one set wins (a library's own variable before OpenMP's general one)
THREAD_VARIABLES = {
    "OPENBLAS_NUM_THREADS": ("blas",),
    "MKL_NUM_THREADS": ("blas",),
    "NUMBA_NUM_THREADS": ("numba",),
    "OMP_NUM_THREADS": ("blas", "numba"),
}

_requested: int | None = None  # set_num_threads's n; None: the defaults above


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


def parse_thread_count(text, source: str) -> int:
    """``text`` as a thread count (a whole number >= 1), or an error naming ``source``.

    OpenMP lets ``OMP_NUM_THREADS`` list one count per nesting level ("4,2"); the first
    is the one that counts here.
    """
    first = str(text).split(",")[0].strip()
    if not first.isdigit() or int(first) < 1:
        raise ValueError(f"{source}: expected a whole number of threads >= 1, got {text!r}")
    return int(first)


def _variable(name: str) -> int | None:
    """The thread count environment variable ``name`` gives, or None when it is unset."""
    value = os.environ.get(name, "").strip()
    return parse_thread_count(value, f"environment variable {name}") if value else None


def _from_environment(pool: str) -> int | None:
    """The count the user's environment gives ``pool`` ("blas" or "numba"), or None."""
    counts = (_variable(name) for name, pools in THREAD_VARIABLES.items() if pool in pools)
    return next((count for count in counts if count is not None), None)


def get_num_threads() -> int:
    """How many threads minicnn computes with on the active backend: the numba backend's
    team, or the numpy backend's BLAS threads (as ``torch.get_num_threads``)."""
    from .backend import current_backend

    return budget(current_backend())


def budget(backend) -> int:
    """The threads ``backend`` computes with: :func:`set_num_threads`'s count, else the
    environment's for its pool, else the cores this process may use."""
    pool = "numba" if getattr(backend, "team", None) is not None else "blas"
    return _requested or _from_environment(pool) or available_cores()


def set_num_threads(n: int) -> None:
    """Compute with ``n`` threads from now on, in every pool (as ``torch.set_num_threads``)."""
    global _requested
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"set_num_threads: expected a whole number of threads, got {n!r}")
    if n < 1:
        raise ValueError(f"set_num_threads: expected a whole number of threads >= 1, got {n}")
    _requested = n
    from .backend import current_backend

    apply(current_backend())


def apply(backend) -> None:
    """Give the pools their threads for computing on ``backend``: the backend registry
    calls this whenever the active backend changes."""
    from threadpoolctl import ThreadpoolController

    team = getattr(backend, "team", None)
    threads = budget(backend)
    if team is not None:  # the numba backend: its team computes, BLAS runs inside it
        team.resize(threads)
        threads = 1
    # A new controller each time: it finds the BLAS libraries loaded since the last.
    ThreadpoolController().limit(limits=threads, user_api="blas")


def thread_pools() -> dict[str, int]:
    """How many threads each pool runs with now, e.g. ``{'team': 2, 'blas': 1}``: the
    active backend's team (the numba backend), and BLAS."""
    from threadpoolctl import threadpool_info

    from .backend import current_backend

    pools = {}
    team = getattr(current_backend(), "team", None)
    if team is not None:
        pools["team"] = team.size
    blas = [p for p in threadpool_info() if p["user_api"] == "blas"]
    numpys = [p for p in blas if "numpy" in p["filepath"]]  # the BLAS NumPy's products call
    if blas:
        pools["blas"] = (numpys or blas)[0]["num_threads"]
    return pools
