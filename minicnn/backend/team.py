"""The numba backend's threads: one team that runs the pieces of one operation at once.

Read this after the textbook path. A CPU step has two kinds of parallel work: matrix
products (BLAS) and the compiled loops (Numba). Each library brings its own thread pool,
and each pool keeps its idle threads spinning for the next task; on few cores the two
pools then fight over them (a LeNet step took 70 ms instead of 5 on 2 cores). So the
numba backend uses neither pool. It owns one team of ``size`` threads, the caller and
``size - 1`` workers, and cuts each operation into pieces that write disjoint parts of
the output: chunks of a batch for a convolution (each chunk's im2col, matrix product and
col2im on one thread, BLAS single-threaded), ranges of (image, channel) planes for
pooling and batch norm, ranges of elements for ReLU. Idle workers wait on a lock and
take no CPU, so nothing spins while another thread computes.

The loops are compiled with ``nogil=True`` and NumPy's products release the GIL too, so
the pieces do run at once; only the few lines of Python around them take turns.

A piece that itself asks for a team (an im2col inside a convolution's chunk) runs on its
own thread: the team never waits for itself.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor, wait

#: Work smaller than this runs on the calling thread alone: waking a worker and waiting
#: for it costs tens of microseconds, more than a small loop's or product's whole run.
PARALLEL_MIN_ELEMENTS = 1 << 15  # a loop: the elements it writes
PARALLEL_MIN_MULTIPLY_ADDS = 1 << 21  # a matrix product (m, k) @ (k, n): m*k*n


class ThreadTeam:
    """``size`` threads that run the pieces of one operation concurrently."""

    def __init__(self, size: int = 1):
        self._executor: ThreadPoolExecutor | None = None
        self._inside = threading.local()  # set while this thread runs a piece
        self.size = 1
        self.resize(size)

    def resize(self, size: int) -> None:
        """Use ``size`` threads from now on (the caller plus ``size - 1`` workers)."""
        if size == self.size and (size == 1 or self._executor is not None):
            return
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        self.size = size
        if size > 1:
            self._executor = ThreadPoolExecutor(size - 1, thread_name_prefix="minicnn")

    def parts(self, count: int, work: int, minimum: int | None = None):
        """``range(count)`` cut into one (start, stop) per thread, as even as can be; one
        part when ``work`` is below ``minimum`` (by default :data:`PARALLEL_MIN_ELEMENTS`,
        work counted in elements written), too small to share."""
        minimum = PARALLEL_MIN_ELEMENTS if minimum is None else minimum
        pieces = max(1, min(self.size, count)) if work >= minimum else 1
        bounds = [count * k // pieces for k in range(pieces + 1)]
        return list(zip(bounds[:-1], bounds[1:], strict=True))

    def map(self, fn, items) -> list:
        """``[fn(item) for item in items]``, the items shared out among the team's threads.

        The caller runs the first item itself. Every item has finished when this returns
        (or raises the first error), so no piece outlives the operation it belongs to.
        """
        items = list(items)
        if len(items) <= 1 or self._executor is None or getattr(self._inside, "busy", False):
            return [fn(item) for item in items]
        futures = [self._executor.submit(self._run, fn, item) for item in items[1:]]
        try:
            first = self._run(fn, items[0])
        finally:
            wait(futures)
        return [first] + [future.result() for future in futures]

    def run(self, kernel, count: int, work: int, *args) -> None:
        """``kernel(*args, start, stop)`` for the team's parts of ``range(count)``."""
        self.map(lambda part: kernel(*args, *part), self.parts(count, work))

    def _run(self, fn, item):
        self._inside.busy = True
        try:
            return fn(item)
        finally:
            self._inside.busy = False
