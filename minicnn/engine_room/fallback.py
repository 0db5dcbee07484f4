"""When a fast backend runs its own kernel, and when the reference's runs instead.

Read this after the textbook path. The fast backends, numba (loops compiled by Numba,
engine_room/numba_.py) and cupy (CUDA kernels, engine_room/cupy_.py), inherit every
kernel of the NumPy reference backend (backend/numpy_.py) and replace the hot ones. A
fast kernel takes only some inputs: Numba's loops are compiled for float32 and float64,
the fused CUDA kernels take one dtype throughout, and so on. For any other input the
reference kernel runs. Each fast method says which inputs are its own on the line above
it, in one decorator that both backends use::

    @fast_kernel(when=_contiguous_floats)
    def relu(self, x):
        ...  # the compiled loop

runs the method's own body when ``when(self, x)`` holds, and otherwise the NumPy
backend's ``relu``: the textbook path's kernel, computing on the backend's ``xp`` (NumPy
arrays, or CuPy's on a GPU). Where the NumPy backend has no method of that name (the
engine room's own, such as ``tap_sum``), ``otherwise=`` names the fallback. ``when`` and
``otherwise`` take the method's own arguments, keywords included.
"""

from __future__ import annotations

import functools

from ..backend.numpy_ import NumpyBackend


def fast_kernel(when, otherwise=None):
    """Decorate a fast backend's method: it runs when ``when(self, *args, **kwargs)``
    holds; otherwise ``otherwise(self, *args, **kwargs)`` runs instead, by default the
    NumPy backend's method of the same name (the reference kernel)."""

    def decorate(method):
        fallback = otherwise or getattr(NumpyBackend, method.__name__)

        @functools.wraps(method)
        def dispatch(self, *args, **kwargs):
            if when(self, *args, **kwargs):
                return method(self, *args, **kwargs)
            return fallback(self, *args, **kwargs)

        return dispatch

    return decorate
