"""The numba backend's threads: one team that runs the parts of one operation at once.

Read this after the textbook path. A CPU step has two kinds of parallel work: matrix
products (BLAS) and the compiled loops (Numba). Each library brings its own thread pool,
and each pool keeps its idle threads spinning for the next task; on few cores the two
pools then fight over them (a LeNet step took 70 ms instead of 5 on 2 cores). So the
numba backend uses neither pool. It owns one team of ``size`` threads, the caller and
``size - 1`` workers, and cuts each operation into parts. Idle workers wait on a lock and
take no CPU, so nothing spins while another thread computes.

Two words name the slices work is cut into, in this file and throughout the engine room:

- a **part** is the slice of an operation's output that one thread of the team writes
  (:meth:`ThreadTeam.parts` cuts them): a range of a convolution's images, of (image,
  channel) planes for pooling, of channels or images for batch norm, of elements for
  ReLU. No two parts write the same element.
- a **chunk** is the slice that a loop inside one part processes at a time, sized to
  stay in cache: a convolution's part goes through its images a chunk at a time, each
  chunk's im2col, matrix product and col2im on the part's thread, BLAS single-threaded
  (engine_room/conv.py).

The loops are compiled with ``nogil=True`` and NumPy's products release the GIL too, so
the parts do run at once; only the few lines of Python around them take turns.

A part that itself asks for a team (a matrix product inside a convolution's part) runs
on its own thread: the team never waits for itself. So does an operation that another
thread asks for while the team is busy (two threads training at once), and a process
forked from this one starts with a team of one (its parent's workers are not in it).
NumPy's error state (``numpy.errstate``) is per thread: parts on workers keep the default.
"""

from __future__ import annotations

import os
import threading
import weakref

from . import tuning

_local = threading.local()  # .busy: this thread is running a part of some team's work


class ThreadTeam:
    """``size`` threads that run the parts of one operation concurrently."""

    def __init__(self, size: int = 1):
        self._workers: list[_Worker] = []
        self._lock = threading.Lock()  # one operation at a time: held while one runs
        self.resize(size)
        _teams.add(self)

    @property
    def size(self) -> int:
        return len(self._workers) + 1

    def resize(self, size: int) -> None:
        """Use ``size`` threads from now on (the caller plus ``size - 1`` workers)."""
        with self._lock:
            while self.size > size:
                self._workers.pop().stop()
            while self.size < size:
                self._workers.append(_Worker())

    def parts(self, count: int, work: int, minimum: int | None = None):
        """``range(count)`` cut into parts, one (start, stop) per thread, as even as can be;
        one part when ``work`` is below ``minimum`` (by default ``tuning.PARALLEL_MIN_ELEMENTS``,
        work counted in elements written), too small to cut."""
        minimum = tuning.PARALLEL_MIN_ELEMENTS if minimum is None else minimum
        n_parts = max(1, min(self.size, count)) if work >= minimum else 1
        bounds = [count * k // n_parts for k in range(n_parts + 1)]
        return list(zip(bounds[:-1], bounds[1:], strict=True))

    def map(self, fn, items) -> list:
        """``[fn(item) for item in items]``, the items dealt out among the team's threads
        (thread k takes items k, k + size, ...; the caller is thread 0).

        Every item has finished when this returns (or raises the first error), so no
        part outlives the operation it belongs to.
        """
        items = list(items)
        if len(items) <= 1 or getattr(_local, "busy", False):
            return [fn(item) for item in items]
        if not self._lock.acquire(blocking=False):  # busy with another thread's operation
            return [fn(item) for item in items]
        try:
            return self._deal_out(fn, items)
        finally:
            self._lock.release()

    def _deal_out(self, fn, items) -> list:
        helpers = self._workers[: len(items) - 1]
        threads = len(helpers) + 1
        for k, worker in enumerate(helpers, start=1):
            worker.begin(fn, items[k::threads])
        try:
            _local.busy = True
            mine = [fn(item) for item in items[0::threads]]
        finally:
            _local.busy = False
            outcomes = _finish_all(helpers)  # even on Ctrl-C: no part outlives the call
        for ok, outcome in outcomes:
            if not ok:
                raise outcome
        theirs = [outcome for _, outcome in outcomes]
        results = [None] * len(items)
        results[0::threads] = mine
        for k, their in enumerate(theirs, start=1):
            results[k::threads] = their
        return results


def _finish_all(helpers) -> list:
    """Every helper's outcome, waiting for each even through a KeyboardInterrupt (raised
    once all have finished): a worker left running would write into arrays the caller
    goes on to use, and hand its result to the next operation."""
    outcomes, interrupt = [], None
    for worker in helpers:
        while True:
            try:
                outcomes.append(worker.finish())
                break
            except KeyboardInterrupt as error:
                interrupt = error
    if interrupt is not None:
        raise interrupt
    return outcomes


_teams: weakref.WeakSet = weakref.WeakSet()


def _after_fork_in_child() -> None:
    """A forked child has only the thread that forked: its teams start again with one."""
    for team in _teams:
        team._workers = []
        team._lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class _Worker:
    """One thread of the team: sleeps on a lock until given items, runs them, reports."""

    def __init__(self):
        self._go, self._done = threading.Lock(), threading.Lock()
        self._go.acquire()
        self._done.acquire()
        self._job = self._outcome = None
        self._thread = threading.Thread(target=self._loop, name="minicnn-team", daemon=True)
        self._thread.start()

    def begin(self, fn, items) -> None:
        self._job = fn, items
        self._go.release()

    def finish(self) -> tuple[bool, object]:
        """Wait for the items given to :meth:`begin`: (True, their results) or (False,
        the error they raised)."""
        self._done.acquire()
        outcome, self._outcome = self._outcome, None
        return outcome

    def stop(self) -> None:
        self.begin(None, None)
        self._thread.join()

    def _loop(self) -> None:
        _local.busy = True  # a part that asks for the team runs here, on this thread
        while True:
            self._go.acquire()
            fn, items = self._job
            self._job = None
            if fn is None:
                return
            try:
                self._outcome = True, [fn(item) for item in items]
            except BaseException as error:  # handed to the caller, raised there
                self._outcome = False, error
            del fn, items  # let go of the part's arrays before sleeping (the buffer pool)
            self._done.release()
