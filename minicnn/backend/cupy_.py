"""The CuPy backend: the same engine on an NVIDIA GPU.

CuPy mirrors NumPy's API, so :class:`CupyBackend` is the NumPy backend with
``xp = cupy``: every kernel of :class:`~minicnn.backend.numpy_.NumpyBackend` (im2col,
col2im, pooling) runs unchanged on the device as a handful of strided CuPy array
operations per kernel offset. Those operations are deterministic: each one writes
distinct elements, so no atomics are involved and the GPU computes the same sums as the
CPU, up to the rounding of cuBLAS.

Only what cannot be shared lives here: how to tell a CuPy array, how to copy to and
from the host, and the device's random generator (dropout masks are drawn on the GPU,
so a training step copies nothing between host and device; initialisation draws on the
host, once, so that a seed gives the same weights on every backend).
"""

from __future__ import annotations

import numpy

from .numpy_ import NumpyBackend

INSTALL_HINT = "pip install -e '.[gpu]' (cupy-cuda12x; cupy-cuda13x for CUDA 13)"


def _import_cupy():
    import cupy

    return cupy


class CupyBackend(NumpyBackend):
    """Arrays are ``cupy.ndarray`` on the current CUDA device."""

    name = "cupy"
    device = "cuda"
    # conv2d unfolds up to this many bytes of columns per matrix product (CPU backends: a
    # few MiB that stay in cache). On a GPU each chunk costs kernel launches, and its
    # memory is plentiful, so a whole batch's columns are usually unfolded at once.
    conv_chunk_bytes = 512 * 2**20

    @classmethod
    def unavailable_reason(cls) -> str | None:
        """``None`` when CuPy imports and sees a CUDA device; otherwise why not (the
        reason starts with "no CUDA device", the words the skipped GPU tests show)."""
        try:
            cupy = _import_cupy()
        except ImportError as error:
            return f"no CUDA device: cupy is not installed ({error}); {INSTALL_HINT}"
        except Exception as error:  # installed, but a CUDA library it needs fails to load
            return f"no CUDA device: cupy fails to import ({type(error).__name__}: {error})"
        try:
            count = cupy.cuda.runtime.getDeviceCount()
        except Exception as error:  # CUDARuntimeError when there is no driver or no device
            return f"no CUDA device ({type(error).__name__}: {error})"
        return None if count > 0 else "no CUDA device"

    def __init__(self):
        from . import current_seed

        self.xp = _import_cupy()
        self.reseed(current_seed())

    def is_array(self, obj) -> bool:
        return isinstance(obj, self.xp.ndarray)

    def asarray(self, data, dtype=None):
        """Copy host data (lists, NumPy arrays) to the device; device arrays stay put."""
        return self.xp.asarray(data, dtype=dtype)

    def to_numpy(self, array) -> numpy.ndarray:
        return self.xp.asnumpy(array)

    def generator(self):
        return self._generator

    def reseed(self, seed: int) -> None:
        self._generator = self.xp.random.default_rng(seed)
