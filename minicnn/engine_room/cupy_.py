"""The CuPy backend: the same engine on an NVIDIA GPU.

CuPy mirrors NumPy's API, so :class:`CupyBackend` starts as the NumPy reference backend
with ``xp = cupy``, and replaces what a GPU runs badly that way: each sliding-window
kernel (im2col, col2im, tap_sum, pooling) is one CUDA kernel, one thread per output
element (engine_room/cupy_kernels.py), instead of kh*kw strided array operations; batch
norm's elementwise passes, the sigmoid and its backward, ReLU's backward and SGD's update
are fused likewise (one kernel where NumPy's expression launches two to seven). Each
such method says, in its ``@fast_kernel(when=...)`` line (engine_room/fallback.py, as in
the numba backend), when NumPy's kernel runs instead, on cupy arrays. conv2d's algorithm
per layer comes from engine_room/conv.py (im2col, taps, dx as a convolution; no
Winograd: cuBLAS is fast enough at the products it saves). Every kernel writes distinct
elements, so no atomics are involved and the GPU computes the same sums as the CPU, up
to the rounding of cuBLAS.

Besides, only what cannot be shared lives here: how to tell a CuPy array, how to copy
to and from the host, and the device's random generator (dropout masks are drawn on the
GPU, so a training step copies nothing between host and device; initialisation draws on
the host, once, so that a seed gives the same weights on every backend).
"""

from __future__ import annotations

import numpy

from ..backend.numpy_ import NumpyBackend, _is_pointwise
from ..backend.window import Window2d
from . import conv, cupy_kernels
from .adopt import Adoptions
from .fallback import fast_kernel

INSTALL_HINT = "pip install -e '.[gpu]' (cupy-cuda12x; cupy-cuda13x for CUDA 13)"


def _import_cupy():
    import cupy

    return cupy


# ---- when the CUDA kernels run; otherwise NumPy's, on cupy arrays (engine_room/fallback.py)
def _window_kernels(self, *args, **kwargs) -> bool:
    """The window kernels' condition: ``cuda_kernels`` on."""
    return self.cuda_kernels


def _im2col_kernel(self, x, win: Window2d, out=None, value=0.0) -> bool:
    """im2col's kernel: ``cuda_kernels`` on, zero padding (max pooling's -inf padding is
    NumPy's), and a window that needs unfolding (a 1x1 window over one image does not:
    NumPy's im2col returns the image itself as its columns, a view)."""
    return self.cuda_kernels and value == 0 and not (_is_pointwise(win) and win.n == 1)


def _fusable(self, x, *arrays) -> bool:
    """The fused kernels' condition: ``cuda_kernels`` on, one dtype throughout (NumPy's
    kernels promote)."""
    return self.cuda_kernels and all(a.dtype == x.dtype for a in arrays)


def _fusable_float(self, x, *arrays) -> bool:
    """A fused elementwise kernel's: :func:`_fusable`, float32 or float64, same shapes."""
    return (_fusable(self, x, *arrays) and x.dtype in (numpy.float32, numpy.float64)
            and all(a.shape == x.shape for a in arrays))  # fmt: skip


class CupyBackend(NumpyBackend):
    """Arrays are ``cupy.ndarray`` on the current CUDA device."""

    name = "cupy"
    device = "cuda"
    # The sliding-window kernels (im2col, col2im, tap_sum, pooling) and batch norm's
    # elementwise passes as one CUDA kernel each (engine_room/cupy_kernels.py); False runs
    # the NumPy backend's kernels with xp = cupy instead: kh*kw strided slices a window
    # kernel, several array operations a batch norm (bench_gpu.py --compare-slices).
    cuda_kernels = True
    # conv2d's algorithms that need kernels of their own (backend/interface.py,
    # CAPABILITIES): none here. No Winograd, as cuBLAS is fast enough at the products it
    # saves; the wide rows and the direct loops have no CUDA kernels.
    conv_winograd = conv_wide_rows = conv_direct = False

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
        from ..backend import current_seed

        self.xp = _import_cupy()
        self.adoptions = Adoptions(lambda array: array.base is None)
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

    # ---- what engine_room/conv.py asks of a backend --------------------------------
    def conv2d_plan(self, win: Window2d, weight_shape):
        return conv.plan(self, win, weight_shape)

    def batch_parts(self, count: int, multiply_adds: int) -> list[tuple[int, int]]:
        return [(0, count)]  # one part, the whole batch: one stream

    def map(self, fn, items) -> list:
        return [fn(item) for item in items]

    def adopt_grad(self, array):
        """The gradient itself when its memory is its own and no leaf kept it before;
        otherwise a copy (engine_room/adopt.py)."""
        return self.adoptions.adopt(array)

    def reseed(self, seed: int) -> None:
        self._generator = self.xp.random.default_rng(seed)

    # ---- the sliding windows, one CUDA thread per output element -------------------
    def _run(self, name, inputs, outputs, win, channels=None):
        """Launch cupy_kernels' ``name`` on ``inputs`` (made contiguous: the kernels
        index them by hand) writing ``outputs``; returns the outputs."""
        args = cupy_kernels.window_args(win)
        if channels is not None:  # tap_sum's planes are output channels
            args = args[:1] + (channels,) + args[2:]
        inputs = [self.xp.ascontiguousarray(a) if self.is_array(a) and a.ndim else a
                  for a in inputs]  # fmt: skip
        wide = max(a.size for a in inputs + outputs if self.is_array(a)) >= 2**31
        cupy_kernels.kernel(self.xp, name, wide)(*inputs, *args, *outputs)
        return outputs

    @fast_kernel(when=_im2col_kernel)
    def im2col(self, x, win: Window2d, out=None, value=0.0):
        shape = (win.c, win.kh, win.kw, win.n, win.oh, win.ow)
        cols = self.empty(shape, x.dtype) if out is None else out.reshape(shape)
        self._run("im2col", [x], [cols], win)
        return cols.reshape(win.c * win.kh * win.kw, win.n * win.oh * win.ow)

    @fast_kernel(when=_window_kernels)
    def col2im(self, cols, win: Window2d, out=None):
        dx = self.empty(win.input_shape, cols.dtype) if out is None else out
        return self._run("col2im", [cols], [dx], win)[0]

    @fast_kernel(when=_window_kernels, otherwise=conv.tap_sum)
    def tap_sum(self, z, win: Window2d, out=None):
        out_channels = z.shape[0] // (win.kh * win.kw)
        shape = (win.n, out_channels, win.oh, win.ow)
        y = self.empty(shape, z.dtype) if out is None else out
        return self._run("tap_sum", [z], [y], win, channels=out_channels)[0]

    @fast_kernel(when=_window_kernels)
    def max_pool2d(self, x, win: Window2d):
        y = self.empty(win.output_shape, x.dtype)
        argmax = self.empty(win.output_shape, numpy.min_scalar_type(win.kh * win.kw))
        return tuple(self._run("max_pool2d", [x, x.dtype.type(-numpy.inf)], [y, argmax], win))

    @fast_kernel(when=_window_kernels)
    def max_pool2d_backward(self, dy, argmax, win: Window2d):
        dx = self.empty(win.input_shape, dy.dtype)
        return self._run("max_pool2d_backward", [dy, argmax], [dx], win)[0]

    @fast_kernel(when=_window_kernels)
    def window_sum(self, x, win: Window2d):
        y = self.empty(win.output_shape, x.dtype)
        return self._run("window_sum", [x], [y], win)[0]

    @fast_kernel(when=_window_kernels)
    def window_sum_backward(self, dy, win: Window2d):
        dx = self.empty(win.input_shape, dy.dtype)
        return self._run("window_sum_backward", [dy], [dx], win)[0]

    # ---- batch norm's elementwise passes, fused ------------------------------------
    @fast_kernel(when=lambda self, x, mean, inv_std, weight=None, bias=None: (
        weight is not None and _fusable(self, x, mean, inv_std, weight, bias)))
    def batch_norm_apply(self, x, mean, inv_std, weight=None, bias=None):
        x_hat, y = self.empty(x.shape, x.dtype), self.empty(x.shape, x.dtype)
        self._run_per_channel("batch_norm_apply", x, [x, mean, inv_std, weight, bias], [x_hat, y])
        return x_hat, y

    @fast_kernel(when=_fusable)
    def batch_norm_grad(self, gy, x_hat, scale, mean_gy, mean_gy_x_hat):
        dx = self.empty(gy.shape, gy.dtype)
        inputs = [gy, x_hat, scale, mean_gy, mean_gy_x_hat]
        self._run_per_channel("batch_norm_grad", gy, inputs, [dx])
        return dx

    # ---- the activations and SGD's update, fused -------------------------------------
    @fast_kernel(when=_fusable_float)
    def sigmoid(self, x):
        y = self.empty(x.shape, x.dtype)
        cupy_kernels.kernel(self.xp, "sigmoid")(x, y)
        return y

    @fast_kernel(when=_fusable_float)
    def sigmoid_backward(self, gy, y):
        dx = self.empty(gy.shape, gy.dtype)
        cupy_kernels.kernel(self.xp, "sigmoid_backward")(gy, y, dx)
        return dx

    @fast_kernel(when=_fusable_float)
    def relu_backward(self, gy, y):
        dx = self.empty(gy.shape, gy.dtype)
        cupy_kernels.kernel(self.xp, "relu_backward")(gy, y, dx)
        return dx

    @fast_kernel(when=lambda self, a, x, y: _fusable_float(self, y, x))
    def axpy(self, a, x, y) -> None:
        cupy_kernels.kernel(self.xp, "axpy")(y.dtype.type(a), x, y)

    def _run_per_channel(self, name, x, inputs, outputs):
        inputs = [self.xp.ascontiguousarray(a) for a in inputs]
        pixels = x.size // (x.shape[0] * x.shape[1]) if x.size else 1  # H*W, or 1 for (N, C)
        kernel = cupy_kernels.kernel(self.xp, name, x.size >= 2**31)
        kernel(*inputs, x.shape[1], pixels, *outputs)

