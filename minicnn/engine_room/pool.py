"""A pool of host buffers, so that each training step reuses the last one's memory.

Training repeats itself: every step allocates arrays of the same sizes (activations,
their gradients, the weights' gradients) and frees them again. glibc's malloc may keep a
freed block in its heap for the next request, but a block over its mmap threshold (128
KiB at first, rising to at most 32 MiB) is its own mmap, returned to the operating system
when freed, and freed memory at the top of a heap is trimmed back to it too. The next
step's array of that size then gets fresh pages: one page fault per 4 KiB the first time
each is touched, each page zeroed by the kernel (and, on a virtual machine, trapped by
the hypervisor too). On the machine of benchmarks/README.md that cost VGG-11 a sixth of
its training step, the 100 MiB activations of its first layers, and LeNet at batch 256 a
fifth: 3000 faults a step in arrays of 1 to 10 MiB, with the team's threads each
allocating from an arena of its own; LeNet at batch 32, 400 to 560 faults a step in
arrays of 128 KiB to 1 MiB, a tenth of it. So this pool keeps the arrays of 128 KiB or
more.
(PyTorch keeps GPU memory for reuse the same way; so does CuPy, which is why the cupy
backend needs no pool.)

The rule that makes reuse safe is Python's own reference counting. The pool keeps every
buffer it handed out and gives the caller a view of it. A NumPy view holds a reference
to the array that owns its memory, and so does every view made from it (``x.T``,
``x.reshape(...)``, ``x[0]``: their ``.base`` is the owner). So a buffer is free exactly
when the pool's own reference is the only one left::

    buffer free  <=>  sys.getrefcount(buffer) == the count of a buffer that only the pool holds

Only buffers of at least ``min_bytes`` are pooled (128 KiB, where glibc's mmap
threshold starts: its heap reuses smaller ones well enough, and pooling them too holds
more memory), a request takes the smallest
free buffer of its size to 4x its size (a step asks for the same sizes again, and arrays
it never holds at once share), and the pool holds at most
``limit_bytes``: past that, free buffers are dropped to make room, and if none is free,
the caller gets an ordinary array. ``limit_bytes = 0`` turns the pool off.
"""

from __future__ import annotations

import math
import operator
import sys
import threading
import weakref

import numpy

from . import tuning


def _references(buffers: list, index: int) -> int:
    """The reference count of ``buffers[index]``, always counted the same way (the list's
    reference, plus the one the subscription passes to getrefcount)."""
    return sys.getrefcount(buffers[index])


def _calibrate() -> tuple[int, bool]:
    """The count of a buffer that only the pool holds, and whether one more holder shows
    in the count (if an interpreter ever counted otherwise, the pool would not reuse)."""
    probe = [numpy.empty(0)]
    alone = _references(probe, 0)
    holder = probe[0]  # noqa: F841 (held, to be counted)
    return alone, _references(probe, 0) == alone + 1


_ONLY_THE_POOL, _COUNTS_HOLDERS = _calibrate()


class BufferPool:
    """``empty`` and ``zeros`` like NumPy's, from buffers that are reused once free."""

    def __init__(self, min_bytes: int | None = None, limit_bytes: int | None = None):
        self.min_bytes = tuning.POOL_MIN_BYTES if min_bytes is None else min_bytes
        self.limit_bytes = tuning.POOL_LIMIT_BYTES if limit_bytes is None else limit_bytes
        self._buffers: dict[int, list[numpy.ndarray]] = {}  # size in bytes -> buffers
        self._handed_out: dict[int, weakref.ref] = {}  # id(buffer) -> the view empty() gave
        self._lock = threading.Lock()  # two threads must not take the same free buffer
        self.reused = self.allocated = 0

    def empty(self, shape, dtype=numpy.float64) -> numpy.ndarray:
        """An uninitialised array, like ``numpy.empty``."""
        dtype = numpy.dtype(dtype)
        shape = tuple(shape) if numpy.iterable(shape) else (operator.index(shape),)
        nbytes = dtype.itemsize * math.prod(shape)  # numpy.prod: 3 us a call, 36 calls a LeNet step
        if nbytes < self.min_bytes or not _COUNTS_HOLDERS:
            return numpy.empty(shape, dtype)
        with self._lock:
            buffer = self._free_buffer(nbytes)
            if buffer is None:
                buffer = self._new_buffer(nbytes)
            if buffer is None:  # over the limit with nothing to drop
                return numpy.empty(shape, dtype)
            array = buffer[:nbytes].view(dtype).reshape(shape)
            self._handed_out[id(buffer)] = weakref.ref(array)
        return array

    def is_original(self, array) -> bool:
        """Whether ``array`` is the very array :meth:`empty` returned, not a view made
        from it: then its memory is its alone, as a fresh NumPy array's is (the pool
        reuses it only once ``array`` is gone)."""
        with self._lock:
            ref = self._handed_out.get(id(getattr(array, "base", None)))
        return ref is not None and ref() is array

    def zeros(self, shape, dtype=numpy.float64) -> numpy.ndarray:
        """An array of zeros, like ``numpy.zeros``."""
        array = self.empty(shape, dtype)
        array.fill(0)
        return array

    @property
    def cached_bytes(self) -> int:
        """Bytes held by the pool, in use or free."""
        with self._lock:
            return self._held_bytes()

    def _held_bytes(self) -> int:
        return sum(size * len(buffers) for size, buffers in self._buffers.items())

    def clear(self) -> None:
        """Forget every buffer (those still in use live on as ordinary arrays)."""
        with self._lock:
            self._buffers.clear()
            self._handed_out.clear()

    def _free_buffer(self, nbytes: int):
        """A free buffer of ``nbytes`` to four times that, the smallest there is: arrays of
        other sizes that a step never holds at once share one buffer, so the pool holds
        about what a step holds at its peak, not the most of each size."""
        for size in sorted(size for size in self._buffers if nbytes <= size <= 4 * nbytes):
            buffers = self._buffers[size]
            for index in range(len(buffers)):
                if _references(buffers, index) == _ONLY_THE_POOL:
                    buffers.append(buffers.pop(index))  # most recently used last
                    self.reused += 1
                    return buffers[-1]
        return None

    def _new_buffer(self, nbytes: int):
        if self._held_bytes() + nbytes > self.limit_bytes and not self._drop_free(nbytes):
            return None
        self.allocated += 1
        buffer = numpy.empty(nbytes, numpy.uint8)
        self._buffers.setdefault(nbytes, []).append(buffer)
        return buffer

    def _drop_free(self, nbytes: int) -> bool:
        """Drop free buffers until ``nbytes`` more fit under the limit; False if they can't."""
        for size, buffers in list(self._buffers.items()):
            index = 0
            while index < len(buffers):
                if self._held_bytes() + nbytes <= self.limit_bytes:
                    return True
                if _references(buffers, index) == _ONLY_THE_POOL:
                    self._handed_out.pop(id(buffers[index]), None)
                    del buffers[index]
                else:
                    index += 1
            if not buffers:
                del self._buffers[size]
        return self._held_bytes() + nbytes <= self.limit_bytes
