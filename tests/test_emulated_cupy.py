"""The tests' CuPy emulation (tests/emulated_cupy) behaves as the GPU it stands for in
what matters to minicnn's tests: device and host arrays do not mix, NumPy cannot read a
device array implicitly, the waits are counted, NumPy functions minicnn calls on device
arrays are logged, and ElementwiseKernel checks its arguments as CuPy does and runs the
kernel's own body, compiled once."""

from __future__ import annotations

import emulated_cupy as cp
import numpy
import pytest
from emulated_cupy.kernels import ElementwiseKernel


def test_a_device_array_does_not_mix_with_a_host_array():
    x = cp.asarray(numpy.ones(3))
    with pytest.raises(TypeError, match="Unsupported type <class 'numpy.ndarray'>"):
        x + numpy.ones(3)
    with pytest.raises(TypeError, match="host"):
        cp.concatenate([x, numpy.ones(3)])
    assert isinstance(x + 1.0, cp.ndarray) and isinstance(x + numpy.float64(1), cp.ndarray)


def test_numpy_cannot_read_a_device_array_implicitly_and_get_waits():
    x = cp.asarray(numpy.arange(3.0))
    with pytest.raises(TypeError, match="Implicit conversion to a NumPy array is not allowed"):
        x.__array__()
    cp.reset()
    assert type(x.get()) is numpy.ndarray and float(x.sum()) == 3.0 and bool(x[1])
    assert cp.counters["synchronizations"] == 3


def test_numpy_functions_minicnn_calls_on_device_arrays_are_logged():
    x = cp.asarray(numpy.arange(4.0))
    cp.reset()
    numpy.concatenate([x, x])  # a test's call: not minicnn's
    assert cp.host_functions == []
    exec("numpy.concatenate([x, x])", {"__name__": "minicnn.functional.fake", "numpy": numpy, "x": x})
    assert cp.host_functions == ["numpy.concatenate in minicnn.functional.fake"]


def test_elementwise_kernel_checks_its_arguments_as_cupy_does():
    kernel = ElementwiseKernel("T x, raw T w, int32 n", "T y", "y = x * w[i % n];", "scaled")
    x, w = cp.asarray(numpy.arange(4.0)), cp.asarray(numpy.array([1.0, 10.0]))
    y = cp.empty(4, numpy.float64)
    kernel(x, w, 2, y)
    numpy.testing.assert_array_equal(y.get(), [0.0, 10.0, 2.0, 30.0])
    with pytest.raises(TypeError, match="Wrong number of arguments"):
        kernel(x, w)
    with pytest.raises(TypeError, match="Type is mismatched"):
        kernel(x, cp.asarray(numpy.ones(2, numpy.float32)), 2, y)
    with pytest.raises(TypeError, match="host"):
        kernel(x, numpy.ones(2), 2, y)
    with pytest.raises(ValueError, match="shape"):
        kernel(x, w, 2, cp.empty(3, numpy.float64))


def test_a_kernel_is_compiled_once_per_dtype():
    kernel = ElementwiseKernel("T x", "T y", "y = x + (T)1;", "plus_one")
    for dtype in (numpy.float32, numpy.float32, numpy.float64):
        x = cp.asarray(numpy.zeros(2, dtype))
        assert (kernel(x, cp.empty(2, dtype)).get() == 1).all()
    assert len(kernel._compiled) == 2


def test_a_body_gplusplus_refuses_is_an_error_with_its_message():
    kernel = ElementwiseKernel("T x", "T y", "y = undeclared_name;", "broken")
    with pytest.raises(RuntimeError, match="g\\+\\+ could not compile kernel broken"):
        kernel(cp.asarray(numpy.zeros(2)), cp.empty(2, numpy.float64))
