"""Array backends: which array library holds the data, and which kernels compute on it.

Three backends, one interface, declared in backend/interface.py: ``Backend``, what the
textbook path asks of every backend (the numpy backend provides it), and
``FastBackend``, what the engine room asks of the fast two besides:

- ``numpy``: NumPy arrays, vectorised NumPy kernels, the chapter's algorithms. The
  readable reference, in this package.
- ``numba``: the same NumPy arrays, the hot kernels compiled by Numba and run by a team
  of threads (engine_room/numba_.py); conv2d's algorithm chosen per layer
  (engine_room/conv.py).
- ``cupy``:  CuPy arrays on an NVIDIA GPU, the window kernels in CUDA
  (engine_room/cupy_.py).

The fast two live in the engine room (minicnn/engine_room/): read them after this
package. Chainer's rule decides where an operation runs: the *array* says CPU or GPU
(:func:`backend_of`), and for CPU arrays the *active* backend says which CPU kernels
run. Choose the active backend with :func:`use_backend` or the environment variable
``MINICNN_BACKEND``.
"""

from __future__ import annotations

import importlib
import os

import numpy

from .. import threads
from .window import Window2d, pair

__all__ = [
    "Window2d",
    "available_backends",
    "backend_of",
    "cpu_generator",
    "current_backend",
    "get_array_module",
    "get_backend",
    "manual_seed",
    "pair",
    "unavailable_reason",
    "use_backend",
]

# name -> (module, class).
_REGISTRY = {
    "numpy": ("minicnn.backend.numpy_", "NumpyBackend"),
    "numba": ("minicnn.engine_room.numba_", "NumbaBackend"),
    "cupy": ("minicnn.engine_room.cupy_", "CupyBackend"),
}
# The default: the fastest CPU backend installed (benchmarks/README.md). The GPU is never
# chosen behind the user's back: arrays would move to another device.
_DEFAULT_ORDER = ("numba", "numpy")

_instances: dict = {}
_reasons: dict[str, str] = {}
_current = None
_seed = 0
_cpu_generator = None


def _load(name: str):
    """Instantiate backend ``name`` once; remember why it failed if it did."""
    if name in _instances:
        return _instances[name]
    if name in _reasons:
        return None
    module_name, class_name = _REGISTRY[name]
    try:
        module = importlib.import_module(module_name)
        backend_class = getattr(module, class_name)
        reason = (
            backend_class.unavailable_reason()
            if hasattr(backend_class, "unavailable_reason")
            else None
        )
        if reason:
            _reasons[name] = reason
            return None
        _instances[name] = backend_class()
    except ImportError as error:
        if error.name == module_name:  # minicnn's own module for it is missing, not the library
            _reasons[name] = f"minicnn has no {name} backend module ({module_name})"
        else:
            _reasons[name] = f"{name} is not installed ({error})"
        return None
    return _instances[name]


def available_backends() -> list[str]:
    """Names of the backends that work on this machine, e.g. ``['numpy', 'numba']``."""
    return [name for name in _REGISTRY if _load(name) is not None]


def unavailable_reason(name: str) -> str | None:
    """Why backend ``name`` is not available (``None`` when it is)."""
    if name not in _REGISTRY:
        return f"unknown backend {name!r}"
    _load(name)
    return _reasons.get(name)


def get_backend(name: str):
    """The backend object called ``name``; a clear error when it cannot be used here."""
    if name not in _REGISTRY:
        raise ValueError(
            f"unknown backend {name!r}; backends are {list(_REGISTRY)}, "
            f"available here: {available_backends()}"
        )
    backend = _load(name)
    if backend is None:
        raise RuntimeError(
            f"backend {name!r} is not available: {_reasons[name]}. "
            f"Available backends: {available_backends()}"
        )
    return backend


class use_backend:
    """Make ``name`` the active backend, at once; as a context manager, only inside.

    >>> mc.use_backend("numba")            # from now on
    >>> with mc.use_backend("numpy"):      # just here
    ...     ...
    """

    def __init__(self, name: str):
        self._previous = _current
        self.backend = get_backend(name)
        _activate(self.backend)

    def __enter__(self):
        return self.backend

    def __exit__(self, *exc_info):
        _activate(self._previous)


def _activate(backend) -> None:
    """Make ``backend`` the active one (None: choose again on next use), and give the
    thread pools their threads for it (minicnn/threads.py)."""
    global _current
    if backend is not None:
        threads.apply(backend)  # first: a bad thread variable leaves the active one as it was
    _current = backend


def current_backend():
    """The active backend object (``.name``, ``.xp``, kernels)."""
    if _current is None:
        requested = os.environ.get("MINICNN_BACKEND")
        if requested and requested not in _REGISTRY:
            raise ValueError(
                f"unknown backend {requested!r} in environment variable MINICNN_BACKEND; "
                f"backends are {list(_REGISTRY)}, available here: {available_backends()}"
            )
        if requested:
            _activate(get_backend(requested))
        else:
            _activate(next(_load(n) for n in _DEFAULT_ORDER if _load(n)))
    return _current


def backend_of(array):
    """The backend that computes on ``array``: CuPy arrays run on ``cupy``; NumPy arrays on
    the active backend when it is a CPU one, otherwise on ``numpy``."""
    if type(array) is not numpy.ndarray and hasattr(array, "__cuda_array_interface__"):
        cupy_backend = get_backend("cupy")  # device memory, whatever its class
        if cupy_backend.is_array(array):
            return cupy_backend
    elif isinstance(array, numpy.ndarray | numpy.generic):
        active = current_backend()
        return active if active.device == "cpu" else get_backend("numpy")
    raise TypeError(f"not an array of any minicnn backend: {type(array).__name__}")


def get_array_module(array):
    """``numpy`` or ``cupy``, whichever holds ``array`` (Chainer's rule: the data decides)."""
    return backend_of(array).xp


def manual_seed(seed: int) -> None:
    """Seed every random draw minicnn makes (initialisation, dropout, shuffling)."""
    global _seed, _cpu_generator
    _seed = int(seed)
    _cpu_generator = None
    for backend in _instances.values():
        if hasattr(backend, "reseed"):
            backend.reseed(_seed)


def cpu_generator() -> numpy.random.Generator:
    """The one NumPy generator the CPU backends share (so numpy and numba draw alike)."""
    global _cpu_generator
    if _cpu_generator is None:
        _cpu_generator = numpy.random.default_rng(_seed)
    return _cpu_generator


def current_seed() -> int:
    return _seed
