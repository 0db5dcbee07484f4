"""The memory count of benchmarks/bench_nets.py: the resident pages of the buffer pool."""

import importlib.util
import mmap
import pathlib
import sys

import numpy
import pytest

COMMON = pathlib.Path(__file__).parents[1] / "benchmarks" / "common.py"

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="mincore and /proc/self: Linux only"
)


@pytest.fixture(scope="module")
def common():
    spec = importlib.util.spec_from_file_location("bench_common", COMMON)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_only_the_pages_written_are_resident(common):
    page = mmap.PAGESIZE
    memory = mmap.mmap(-1, 64 * page)  # anonymous: no page resident before it is touched
    assert common.resident_bytes(memory) == 0
    numpy.frombuffer(memory, numpy.uint8)[5 * page : 8 * page] = 1
    assert common.resident_bytes(memory) == 3 * page
    memory.close()


def test_memory_must_start_on_a_page(common):
    memory = mmap.mmap(-1, 4 * mmap.PAGESIZE)
    with pytest.raises(ValueError, match="does not start on a page"):
        common.resident_bytes(memoryview(memory)[1:])
    memory.close()


def _huge_pages_never() -> bool:
    """Whether the kernel's transparent huge pages are off, "[never]" in its setting."""
    setting = pathlib.Path("/sys/kernel/mm/transparent_hugepage/enabled")
    return setting.exists() and "[never]" in setting.read_text()


@pytest.mark.skipif(
    _huge_pages_never(),
    reason="transparent huge pages are off here (never): no segment could get them, so the test could not fail",
)
def test_a_page_written_in_a_shared_segment_is_the_only_one_resident(common):
    """A shared segment asks for no huge pages: else writing one page of a block would
    make its whole 2 MiB resident (LeNet at batch 32 held 3.0 to 4.7 MB for 3.0)."""
    from minicnn.engine_room.allocator import BufferPool

    mib = 1 << 20
    pool = BufferPool(min_bytes=mib)
    before = pool.empty((9 * mib,), numpy.uint8)  # noqa: F841 (held: the next block follows it)
    block = pool.empty((mib,), numpy.uint8)  # in the same 20 MiB segment, 9 MiB in
    block[mib // 2] = 1
    assert common.resident_bytes(pool.segments[0]) == mmap.PAGESIZE
