"""The part of CuPy that minicnn uses, emulated on the CPU, so that the cupy backend's
tests run on every CI machine. Test equipment: it lives in tests/, never in minicnn/,
and ``tests/conftest.py`` installs it as ``cupy`` only where no real GPU answers.

- :class:`ndarray` is a NumPy array standing for device memory. It does not mix with
  host arrays: an operation on a device array and a NumPy array is CuPy's TypeError.
  ``.get()`` and ``asnumpy`` copy it to the host; ``asarray`` copies host data over.
  (One hole a NumPy subclass cannot close: ``numpy.asarray(device_array)`` succeeds
  here where CuPy raises; ``tests/test_cupy_backend.py`` checks minicnn's sources for
  NumPy calls on data instead.)
- A NumPy function that minicnn calls on a device array (``numpy.exp(x)`` where
  ``cupy.exp(x)`` was meant) still computes, as CuPy's ``__array_function__`` would, but
  is logged in :data:`host_functions`; each cupy test fails if the log is not empty.
- :class:`~tests.emulated_cupy.kernels.ElementwiseKernel` runs minicnn's CUDA kernel
  bodies, compiled for the CPU by g++ (``kernels.py``).
- :data:`counters` counts what costs on a GPU: ``launches`` (every elementwise
  operation, reduction, product or kernel call: one launch each on a GPU) and
  ``synchronizations`` (the host waiting for the device: ``.item()``, ``float()``,
  ``int()``, ``bool()``, ``.get()``, ``asnumpy``, ``.tolist()``).
"""

from __future__ import annotations

import sys
import types
from collections import Counter

import numpy

from .kernels import ElementwiseKernel as ElementwiseKernel  # cupy.ElementwiseKernel

counters: Counter = Counter()
host_functions: list[str] = []

#: Functions that allocate or reshape without computing: no kernel launch on a GPU.
NO_LAUNCH = {"empty", "empty_like", "result_type", "broadcast_to", "expand_dims",
             "reshape", "transpose", "squeeze", "ravel", "can_cast", "dtype", "isscalar",
             "shape", "ndim", "broadcast_shapes", "min_scalar_type", "promote_types"}  # fmt: skip


def reset() -> None:
    """Zero the counters and forget the logged host calls."""
    counters.clear()
    by_operation.clear()
    host_functions.clear()


def launches() -> int:
    return counters["launches"]


def launched(name: str) -> None:
    """Count one kernel launch, by the operation that launched it."""
    counters["launches"] += 1
    by_operation[name] += 1


by_operation: Counter = Counter()


class ndarray(numpy.ndarray):  # noqa: N801 - CuPy's name
    """A device array: NumPy memory standing for the GPU's."""

    def __new__(cls, shape, dtype=float, memptr=None, strides=None, order="C"):
        return numpy.ndarray.__new__(cls, shape, dtype, order=order)

    __cuda_array_interface__ = property(lambda self: {"shape": self.shape, "typestr": self.dtype.str})

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        refuse_host(ufunc.__name__, inputs, kwargs.get("out", ()))
        launched(ufunc.__name__ if method == "__call__" else f"{ufunc.__name__}.{method}")
        out = kwargs.get("out")
        if out is not None:
            kwargs["out"] = tuple(host_view(o) for o in out)
        result = getattr(ufunc, method)(*[host_view(x) for x in inputs], **kwargs)
        if method == "at":
            return None
        if out is not None:
            return out[0] if len(out) == 1 else out
        return device(result)

    def __array_function__(self, func, types, args, kwargs):
        refuse_host(func.__name__, args, kwargs)
        caller = _caller()
        if caller.startswith("minicnn"):  # minicnn's own call, not a test's
            host_functions.append(f"{func.__module__}.{func.__name__} in {caller}")
        return device(func(*host_views(args), **host_views(kwargs)))

    def __getitem__(self, key):
        """An element is a 0-d device array, as in CuPy: reading it is a wait, counted."""
        result = super().__getitem__(host_views(key) if isinstance(key, tuple) else host_view(key))
        return device(result)

    def __array__(self, dtype=None, copy=None):
        raise TypeError(
            "Implicit conversion to a NumPy array is not allowed. "
            "Please use `.get()` to construct a NumPy array explicitly."
        )

    # ---- what makes the host wait for the device -----------------------------------
    def get(self, stream=None, order="C", out=None):
        counters["synchronizations"] += 1
        return numpy.array(host_view(self), order=order)

    def item(self, *args):
        counters["synchronizations"] += 1
        return host_view(self).item(*args)

    def tolist(self):
        counters["synchronizations"] += 1
        return host_view(self).tolist()

    def __float__(self):
        counters["synchronizations"] += 1
        return float(host_view(self))

    def __int__(self):
        counters["synchronizations"] += 1
        return int(host_view(self))

    def __bool__(self):
        counters["synchronizations"] += 1
        return bool(host_view(self))

    def __index__(self):
        counters["synchronizations"] += 1
        return host_view(self).__index__()

    def __repr__(self):
        return "emulated cupy " + repr(host_view(self))


def _caller() -> str:
    """The module that called into NumPy (the first frame outside NumPy and this file)."""
    frame = sys._getframe(2)
    while frame is not None:
        module = frame.f_globals.get("__name__", "")
        if not module.startswith(("numpy", "emulated_cupy")) and module != "cupy":
            return module
        frame = frame.f_back
    return ""


def host_view(x):
    """The NumPy array behind a device array (no copy); anything else as it is."""
    return numpy.ndarray.view(x, numpy.ndarray) if isinstance(x, ndarray) else x


def host_views(value):
    if isinstance(value, tuple | list):
        return type(value)(host_views(v) for v in value)
    if isinstance(value, dict):
        return {k: host_views(v) for k, v in value.items()}
    return host_view(value)


def device(result):
    """A result on the device: arrays (and NumPy scalars, as CuPy's 0-d arrays) wrapped."""
    if isinstance(result, ndarray):
        return result
    if isinstance(result, numpy.ndarray):
        return result.view(ndarray)
    if isinstance(result, numpy.generic):
        return numpy.asarray(result).view(ndarray)
    if isinstance(result, tuple | list):
        return type(result)(device(r) for r in result)
    return result


def refuse_host(name: str, *values) -> None:
    """CuPy's TypeError for a host array where device arrays are computed on."""
    for value in values:
        if isinstance(value, tuple | list):
            refuse_host(name, *value)
        elif isinstance(value, dict):
            refuse_host(name, *value.values())
        elif isinstance(value, numpy.ndarray) and not isinstance(value, ndarray):
            raise TypeError(
                f"Unsupported type {type(value)}: {name} got a host (NumPy) array among "
                "device arrays; copy it over with cupy.asarray, or the device array back "
                "with .get()"
            )


# ---- the module's functions -----------------------------------------------------------
def asarray(a, dtype=None, order=None):
    """Device arrays stay (converted if asked); host data is copied to the device."""
    if isinstance(a, ndarray):
        return a if dtype is None or a.dtype == dtype else a.astype(dtype)
    counters["host_to_device"] += 1
    return numpy.array(a, dtype=dtype, order=order or "K").view(ndarray)


def asnumpy(a, stream=None, order="C", out=None):
    if isinstance(a, ndarray):
        return a.get(order=order)
    return numpy.asarray(a, order=order)


def ascontiguousarray(a, dtype=None):
    refuse_host("ascontiguousarray", a)
    if isinstance(a, ndarray) and a.flags.c_contiguous and (dtype is None or a.dtype == dtype):
        return a  # CuPy returns the array itself
    launched("ascontiguousarray")
    return device(numpy.ascontiguousarray(host_view(a), dtype=dtype))


def _function(name: str, function):
    """A NumPy function as CuPy's: device arrays in, device arrays out, no host arrays."""

    def on_device(*args, **kwargs):
        refuse_host(name, args, kwargs)
        if name not in NO_LAUNCH:
            launched(name)
        out = kwargs.get("out")
        result = function(*host_views(args), **host_views(kwargs))
        return out if out is not None else device(result)

    on_device.__name__ = on_device.__qualname__ = name
    return on_device


class _Ufunc:
    """A NumPy ufunc as CuPy's (``cupy.add``, ``cupy.add.at``)."""

    def __init__(self, ufunc):
        self.ufunc, self.__name__ = ufunc, ufunc.__name__

    def __call__(self, *args, **kwargs):
        refuse_host(self.__name__, args, kwargs)
        return device(self.ufunc(*args, **kwargs))

    def at(self, a, indices, b=None):
        refuse_host(f"{self.__name__}.at", a, b)
        launched(f"{self.__name__}.at")
        self.ufunc.at(host_view(a), indices, *(() if b is None else (host_view(b),)))

    def reduce(self, *args, **kwargs):
        refuse_host(f"{self.__name__}.reduce", args, kwargs)
        launched(f"{self.__name__}.reduce")
        return device(self.ufunc.reduce(*host_views(args), **host_views(kwargs)))


def __getattr__(name: str):
    """Everything else minicnn asks of ``cupy``: NumPy's function, on device arrays. A
    private name is the real CuPy's, where it is installed (its NVRTC bindings read
    ``cupy._environment``)."""
    if name.startswith("_"):
        if _real_cupy is not None and hasattr(_real_cupy, name):
            return getattr(_real_cupy, name)
        raise AttributeError(f"the emulated cupy has no {name}")
    if name in ("RawKernel", "ReductionKernel", "fuse"):
        raise AttributeError(f"the emulated cupy has no {name}: minicnn uses none")
    value = getattr(numpy, name)
    if isinstance(value, numpy.ufunc):
        value = _Ufunc(value)
    elif callable(value) and not isinstance(value, type):
        value = _function(name, value)
    globals()[name] = value  # made once
    return value


# ---- random numbers, drawn on the "device" ---------------------------------------------
class _Generator:
    """``cupy.random.Generator``: NumPy's draws, on the device."""

    def __init__(self, seed=None):
        self._numpy = numpy.random.default_rng(seed)

    def __getattr__(self, name):
        method = getattr(self._numpy, name)

        def draw(*args, **kwargs):
            refuse_host(f"random.{name}", args, kwargs)
            launched(f"random.{name}")
            return device(method(*host_views(args), **host_views(kwargs)))

        return draw


random = types.SimpleNamespace(default_rng=_Generator)


# ---- the device, its memory ---------------------------------------------------------------
class _Device:
    """``cupy.cuda.Device()``: waiting for it is a synchronisation."""

    def __init__(self, device=0):
        self.id = int(device)

    def synchronize(self):
        counters["synchronizations"] += 1


class _MemoryPool:
    """``cupy.get_default_memory_pool()``: NumPy's memory has no pool to empty."""

    def free_all_blocks(self) -> None:
        pass


_POOL = _MemoryPool()


def get_default_memory_pool():
    return _POOL


cuda = types.SimpleNamespace(
    runtime=types.SimpleNamespace(getDeviceCount=lambda: 1),
    Device=_Device,
)


_real_cupy = None


def install() -> types.ModuleType:
    """Make ``import cupy`` give this emulation (the real one, if imported, kept aside)."""
    global _real_cupy
    module = sys.modules[__name__]
    if sys.modules.get("cupy") not in (None, module):
        _real_cupy = sys.modules["cupy"]
    module.__name__ = "cupy"  # as minicnn and the tests see it: backend.xp.__name__
    ndarray.__module__ = "cupy"  # and its arrays' type: cupy.ndarray
    sys.modules["cupy"] = module
    return module
