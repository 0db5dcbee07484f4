"""Every CUDA kernel of the cupy backend (engine_room/cupy_kernels.py) compiled by NVRTC,
CUDA's own compiler, for every dtype it is used with, without a GPU: a kernel a GPU
would refuse fails here. Each kernel's source is its body wrapped as CuPy wraps an
ElementwiseKernel (tests/emulated_cupy/kernels.py, ``cuda_source``). The same bodies,
compiled for the CPU, run the cupy tests under the emulation (tests/conftest.py)."""

from __future__ import annotations

import itertools

import emulated_cupy
import numpy
import pytest
from emulated_cupy.kernels import ElementwiseKernel

from minicnn.engine_room import cupy_kernels

nvrtc = pytest.importorskip(
    "cupy_backends.cuda.libs.nvrtc",
    reason="needs NVRTC: pip install -e '.[cuda-compile]' (cupy-cuda13x, nvidia-cuda-nvrtc 13)",
)

#: The non-raw inputs minicnn passes as scalars (cupy_.py): every other is an array.
SCALARS = {"max_pool2d": {"neg_inf"}, "axpy": {"a"}}
#: The argmax's dtype is numpy.min_scalar_type(kh * kw): uint8 up to 15x15 windows.
ARGMAX_TYPES = (numpy.uint8, numpy.uint16)
ARCHITECTURE = "-arch=compute_80"  # A100 and later, as the H100 and H200 lent here


def compile_ptx(source: str, name: str) -> str:
    """NVRTC's PTX for ``source``; a compile error is a failure carrying NVRTC's log."""
    program = nvrtc.createProgram(source, f"{name}.cu", [], [])
    try:
        nvrtc.compileProgram(program, [ARCHITECTURE])
    except nvrtc.NVRTCError as error:
        log = nvrtc.getProgramLog(program)
        raise AssertionError(f"NVRTC refused {name}: {error}\n{log}\n{source}") from None
    ptx = nvrtc.getPTX(program)
    nvrtc.destroyProgram(program)
    return ptx.decode() if isinstance(ptx, bytes) else ptx


def instances():
    """(kernel name, wide index, placeholder dtypes, array inputs) as minicnn launches them."""
    for name in cupy_kernels.SOURCES:
        params, outputs, _ = cupy_kernels.SOURCES[name]
        placeholders = {word for word in params.replace(",", " ").split() + outputs.replace(",", " ").split()
                        if word in ("T", "A")}  # fmt: skip
        argmax = ARGMAX_TYPES if "A" in placeholders else (None,)
        for wide, t, a in itertools.product((False, True), (numpy.float32, numpy.float64), argmax):
            types = {"T": numpy.dtype(t)} | ({"A": numpy.dtype(a)} if a is not None else {})
            yield name, wide, types


def ids(instance):
    name, wide, types = instance
    return "-".join([name, "wide" if wide else "int"] + [d.name for d in types.values()])


@pytest.mark.parametrize("instance", list(instances()), ids=ids)
def test_every_kernel_compiles_with_nvrtc(instance):
    name, wide, types = instance
    kernel = cupy_kernels.kernel(emulated_cupy, name, wide)
    arrays = frozenset(p.name for p in kernel.inputs if not p.raw) - SCALARS.get(name, set())
    ptx = compile_ptx(kernel.cuda_source(types, arrays), kernel.name)
    assert f".entry {kernel.name}(" in ptx


def test_the_scalars_named_here_are_the_kernels_parameters():
    for name, scalars in SCALARS.items():
        kernel = cupy_kernels.kernel(emulated_cupy, name)
        assert scalars <= {p.name for p in kernel.inputs if not p.raw}, name


def test_a_kernel_a_gpu_would_refuse_fails_with_nvrtcs_log():
    """The check can fail: a body calling a host-only function (printf is fine on a GPU,
    std::sort is not) is refused, and the failure shows NVRTC's log."""
    kernel = ElementwiseKernel("T x", "T y", "y = x; std::sort(&y, &y + 1);", "refused")
    with pytest.raises(AssertionError, match="NVRTC refused refused") as refused:
        compile_ptx(kernel.cuda_source({"T": numpy.dtype("float32")}, frozenset({"x"})), "refused")
    assert "error" in str(refused.value)
