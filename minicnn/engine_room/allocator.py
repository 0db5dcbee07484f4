"""The numba backend's memory allocator: a caching allocator of host memory, so that
each training step reuses the last one's memory.

Training repeats itself: every step allocates arrays of the same sizes (activations,
their gradients, the weights' gradients, the columns of im2col) and frees them again.
glibc's malloc may keep a freed block in its heap for the next request, but a block over
its mmap threshold (128 KiB at first, rising to at most 32 MiB) is its own mmap, returned
to the operating system when freed, and freed memory at the top of a heap is trimmed
back to it too. The next step's array of that size then gets fresh pages: one page fault
per 4 KiB the first time each is touched, each page zeroed by the kernel (and, on a
virtual machine, trapped by the hypervisor too). On the machine of benchmarks/README.md
that cost VGG-11 a sixth of its training step, and LeNet at batch 256 a fifth: 3000
faults a step in arrays of 1 to 10 MiB. So this pool keeps the arrays of 128 KiB or more.

It is a *caching allocator*, the design of PyTorch's CUDA memory allocator:

- memory comes from NumPy in large **segments** (2 MiB for requests under 1 MiB, 20 MiB
  for requests under 10 MiB, larger requests a segment of their own, rounded up to 2 MiB);
- a request takes the **smallest free block that fits** (best fit), in any segment, and
  **splits** it: what is left over stays free for the next request;
- a block that comes back **merges** with the free blocks beside it, so that two halves
  freed can serve one request of twice the size.

A pool that only kept whole arrays for requests of similar sizes (this one's first
version) held about 1.75x the memory a step holds at its peak, ResNet-18's 250 MB for
141 MB at batch 32: a step's arrays come and go in an order in which a freed array is
seldom the size the next request asks for. Splitting and merging hold about 1.15x.

The rule that makes reuse safe is Python's own reference counting. A block is handed
out as an array that owns nothing but refers to the segment's memory through a
memoryview (``numpy.frombuffer``), the block's *owner*; the caller gets a view of the
owner. A NumPy view holds a reference to the array it was made from, and every view made
from it too (``x.T``, ``x.reshape(...)``, ``x[0]``: their ``.base`` is the owner). So a
block is free exactly when the pool's own reference to its owner is the only one left::

    block free  <=>  sys.getrefcount(owner) == the count of an owner only the pool holds

A segment is an anonymous memory map: its pages are zeroed by the kernel only when first
touched, and a segment that is given back is unmapped at once. Linux may back a map with
*huge pages* of 2 MiB (NumPy asks it to for every array of 4 MiB or more), and then one
block of 1.3 MiB touched makes 2 MiB resident: LeNet's step at batch 32 kept 3.0 to 4.7
MB resident for 3.0 MB of blocks, depending on where its one 20 MiB segment fell against
the 2 MiB boundaries. So only a segment of a request's own, which its block fills, asks
for huge pages (fewer faults, fewer TLB misses); segments that blocks split do not.

Only arrays of at least ``min_bytes`` are pooled (128 KiB, where glibc's mmap
threshold starts: its heap reuses smaller ones well enough). The pool holds at most
``limit_bytes``: past that, segments with nothing in use are given back to make room,
and if that is not enough the caller gets an ordinary array. ``limit_bytes = 0`` turns
the pool off.
"""

from __future__ import annotations

import bisect
import math
import mmap
import operator
import sys
import threading
import weakref

import numpy

from . import tuning

#: Blocks start on a page and are whole pages: two arrays never share one.
BLOCK_ALIGNMENT = 4096


def _references(owners: list, index: int) -> int:
    """The reference count of ``owners[index]``, always counted the same way (the list's
    reference, plus the one the subscription passes to getrefcount)."""
    return sys.getrefcount(owners[index])


def _calibrate() -> tuple[int, bool]:
    """The count of an owner that only the pool holds, and whether one more holder shows
    in the count (if an interpreter ever counted otherwise, the pool would not reuse)."""
    probe = [numpy.empty(0)]
    alone = _references(probe, 0)
    holder = probe[0]  # noqa: F841 (held, to be counted)
    return alone, _references(probe, 0) == alone + 1


_ONLY_THE_POOL, _COUNTS_HOLDERS = _calibrate()


def segment_bytes(nbytes: int) -> int:
    """The size of the segment a request of ``nbytes`` starts when no free block fits."""
    for largest_request, size in tuning.POOL_SEGMENTS:
        if nbytes < largest_request:
            return size
    return -(-nbytes // tuning.POOL_SEGMENT_ROUNDING) * tuning.POOL_SEGMENT_ROUNDING


def has_own_segment(nbytes: int) -> bool:
    """Whether a request of ``nbytes`` gets a segment of its own (none of the shared sizes)."""
    return nbytes >= tuning.POOL_SEGMENTS[-1][0]


class _Segment:
    """An anonymous memory map, and which of its byte ranges are free, as sorted,
    disjoint, non-adjacent (start, stop) pairs."""

    __slots__ = ("memory", "nbytes", "free")

    def __init__(self, nbytes: int, huge_pages: bool = False):
        memory_map = mmap.mmap(-1, nbytes)  # starts on a page, as every block does
        advice = "MADV_HUGEPAGE" if huge_pages else "MADV_NOHUGEPAGE"
        if hasattr(mmap, advice):  # Linux only; elsewhere the system decides
            memory_map.madvise(getattr(mmap, advice))
        self.memory = memoryview(memory_map)
        self.nbytes = nbytes
        self.free = [(0, nbytes)]

    def take(self, start: int, stop: int, nbytes: int) -> numpy.ndarray:
        """Split the free range (start, stop): its first ``nbytes`` become a block, handed
        out as its owner; the rest stays free."""
        self.free.remove((start, stop))
        if stop - start > nbytes:
            bisect.insort(self.free, (start + nbytes, stop))
        return numpy.frombuffer(self.memory[start : start + nbytes], numpy.uint8)

    def give_back(self, start: int, stop: int) -> None:
        """(start, stop) is free again: merged with the free ranges it touches."""
        free = self.free
        index = bisect.bisect(free, (start, stop))
        if index > 0 and free[index - 1][1] == start:  # the free range before it
            start = free.pop(index - 1)[0]
            index -= 1
        if index < len(free) and free[index][0] == stop:  # the free range after it
            stop = free.pop(index)[1]
        free.insert(index, (start, stop))

    @property
    def unused(self) -> bool:
        return self.free == [(0, self.nbytes)]


class BufferPool:
    """``empty`` and ``zeros`` like NumPy's, from blocks of memory reused once free."""

    def __init__(self, min_bytes: int | None = None, limit_bytes: int | None = None):
        self.min_bytes = tuning.POOL_MIN_BYTES if min_bytes is None else min_bytes
        self.limit_bytes = tuning.POOL_LIMIT_BYTES if limit_bytes is None else limit_bytes
        self._segments: list[_Segment] = []
        self._owners: list[numpy.ndarray] = []  # the blocks in use, as their owners ...
        self._places: list[tuple[_Segment, int, int]] = []  # ... and where each lies
        self._handed_out: dict[int, weakref.ref] = {}  # id(owner) -> the view empty() gave
        self._lock = threading.Lock()  # two threads must not take the same free block
        self.served = 0  # requests served from the pool's memory
        self.segments_allocated = 0  # segments asked of NumPy

    def empty(self, shape, dtype=numpy.float64) -> numpy.ndarray:
        """An uninitialised array, like ``numpy.empty``."""
        dtype = numpy.dtype(dtype)
        shape = tuple(shape) if numpy.iterable(shape) else (operator.index(shape),)
        nbytes = dtype.itemsize * math.prod(shape)  # numpy.prod: 3 us a call, 36 calls a LeNet step
        if nbytes < self.min_bytes or not _COUNTS_HOLDERS:
            return numpy.empty(shape, dtype)
        block_bytes = -(-nbytes // BLOCK_ALIGNMENT) * BLOCK_ALIGNMENT
        with self._lock:
            self._collect_free_blocks()
            place = self._best_fit(block_bytes) or self._new_segment(block_bytes)
            if place is None:  # over the limit, and no unused segment to give back
                return numpy.empty(shape, dtype)
            segment, start, stop = place
            owner = segment.take(start, stop, block_bytes)
            self._owners.append(owner)
            self._places.append((segment, start, start + block_bytes))
            array = owner[:nbytes].view(dtype).reshape(shape)
            self._handed_out[id(owner)] = weakref.ref(array)
            self.served += 1
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

    @property
    def segments(self) -> tuple[memoryview, ...]:
        """The memory of each segment. A segment's pages become resident only once
        touched: benchmarks/common.py counts those (``resident_bytes``), for a segment
        of 20 MiB may serve a small network's 3 MiB."""
        with self._lock:
            return tuple(segment.memory for segment in self._segments)

    @property
    def in_use_bytes(self) -> int:
        """Bytes of the blocks in use (their arrays, or views of them, alive)."""
        with self._lock:
            self._collect_free_blocks()
            return sum(stop - start for _, start, stop in self._places)

    def clear(self) -> None:
        """Forget all memory (arrays still in use live on as ordinary arrays)."""
        with self._lock:
            self._segments.clear()
            self._owners.clear()
            self._places.clear()
            self._handed_out.clear()

    def _held_bytes(self) -> int:
        return sum(segment.nbytes for segment in self._segments)

    def _collect_free_blocks(self) -> None:
        """Give back to their segments the blocks nothing refers to any more."""
        owners, places = self._owners, self._places
        index = 0
        while index < len(owners):
            if _references(owners, index) == _ONLY_THE_POOL:
                self._handed_out.pop(id(owners[index]), None)
                segment, start, stop = places[index]
                owners[index], places[index] = owners[-1], places[-1]  # swap-remove
                owners.pop()
                places.pop()
                segment.give_back(start, stop)
            else:
                index += 1

    def _best_fit(self, nbytes: int):
        """The smallest free range of at least ``nbytes``: (segment, start, stop), or None."""
        best, best_bytes = None, math.inf
        for segment in self._segments:
            for start, stop in segment.free:
                if nbytes <= stop - start < best_bytes:
                    best, best_bytes = (segment, start, stop), stop - start
        return best

    def _new_segment(self, nbytes: int):
        size = segment_bytes(nbytes)
        if self._held_bytes() + size > self.limit_bytes and not self._make_room(size):
            return None
        segment = _Segment(size, huge_pages=has_own_segment(nbytes))
        self._segments.append(segment)
        self.segments_allocated += 1
        return segment, 0, size

    def _make_room(self, nbytes: int) -> bool:
        """Give back unused segments until ``nbytes`` more fit under the limit; False if
        they can't."""
        for segment in [s for s in self._segments if s.unused]:
            if self._held_bytes() + nbytes <= self.limit_bytes:
                break
            self._segments.remove(segment)
        return self._held_bytes() + nbytes <= self.limit_bytes
