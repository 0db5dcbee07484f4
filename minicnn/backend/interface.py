"""What a backend must provide: the interface, declared in one place.

Read this beside backend/numpy_.py. Every operation of the textbook path (tensor.py,
functional/, nn/, optim.py) computes through its backend's methods: a backend is an array
module (``xp``) and a kernel per operation. :class:`Backend` lists what the textbook path
asks of every backend, each member with its signature and what it computes;
:class:`~minicnn.backend.numpy_.NumpyBackend` provides it, as vectorised NumPy.

The fast backends (engine_room/numba_.py, engine_room/cupy_.py) inherit NumpyBackend's
kernels, replace the hot ones, and provide :class:`FastBackend` too: what conv2d's plan
(engine_room/conv.py) asks of them. Three of its algorithms run only on a backend that
says it has them, with a capability flag, and then ask for more methods
(:data:`CAPABILITIES`): Winograd's transforms (:class:`WinogradBackend`), im2col on wide
rows (:class:`WideRowsBackend`) and the direct loops (:class:`DirectConvBackend`). The
numba backend has all three; the cupy backend none.

The arguments named ``win`` are a :class:`~minicnn.backend.window.Window2d`, the shapes of
one sliding-window operation (N, C, H, W input; kh x kw kernel; stride; padding; OH x OW
output), and ``x_pad`` an input with that padding around it (:meth:`FastBackend.pad`).
tests/test_backend_interface.py holds each backend to its protocols, signatures included.

Besides, a backend may have hooks that the registry and the thread budget look for and
do without (:data:`OPTIONAL`). NumpyBackend's other public methods (``zeros``,
``unpad``) are helpers the backends use themselves.
"""

from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from ..engine_room.winograd import Algorithm
    from .window import Window2d


@runtime_checkable
class Backend(Protocol):
    """What the textbook path asks of every backend (numpy, numba, cupy)."""

    name: str  # "numpy", "numba" or "cupy": the registry's name for it
    device: str  # "cpu" or "cuda": where its arrays live
    xp: ModuleType  # the array module, numpy or cupy: what the operations compute with

    # ---- arrays ---------------------------------------------------------------------
    def is_array(self, obj) -> bool:
        """Whether ``obj`` is an array of this backend (host or device memory)."""
        ...

    def asarray(self, data, dtype=None):
        """``data`` (list, scalar, NumPy or CuPy array) as an array of this backend."""
        ...

    def to_numpy(self, array):
        """A NumPy copy of ``array``, on the host."""
        ...

    def empty(self, shape, dtype):
        """A new array of ``shape``, not initialised: where kernels write their outputs."""
        ...

    def matmul(self, a, b):
        """``a @ b`` of two matrices, or two stacks of as many matrices, in a new array."""
        ...

    def adopt_grad(self, array):
        """The array a leaf keeps as its ``.grad``, from ``array``: a copy, or ``array``
        itself where no other array shares its memory."""
        ...

    def generator(self):
        """The random generator that dropout and initialisation draw from."""
        ...

    # ---- convolution ----------------------------------------------------------------
    def conv2d_plan(self, win: Window2d, weight_shape):
        """How this conv2d layer is computed: the engine room's plan (a
        :class:`~minicnn.engine_room.conv.ConvPlan`, each pass's row of its table), or
        None for the chapter's im2col, forward and backward (functional/conv.py)."""
        ...

    def im2col(self, x, win: Window2d, out=None, value=0.0):
        """Every window of ``x`` as a column: (C*kh*kw, N*OH*OW), the padding ``value``."""
        ...

    def col2im(self, cols, win: Window2d, out=None):
        """The adjoint of im2col: every column added back where it was read, (N, C, H, W)."""
        ...

    # ---- pooling --------------------------------------------------------------------
    def max_pool2d(self, x, win: Window2d):
        """``(y, argmax)``: each window's maximum, and where: the offset i*kw + j of the
        first maximum."""
        ...

    def max_pool2d_backward(self, dy, argmax, win: Window2d):
        """dx: each output's gradient sent to the input pixel that won its window."""
        ...

    def window_sum(self, x, win: Window2d):
        """Each window's sum, zero padding: average pooling before the division."""
        ...

    def window_sum_backward(self, dy, win: Window2d):
        """The adjoint of window_sum: dy added to every pixel of each window."""
        ...

    # ---- elementwise ----------------------------------------------------------------
    def axpy(self, a, x, y) -> None:
        """``y += a * x``, in place: SGD's update."""
        ...

    def relu(self, x):
        """``max(x, 0)`` elementwise (a NaN stays NaN)."""
        ...

    def relu_backward(self, gy, y):
        """``gy * (y > 0)``, from ReLU's output ``y``."""
        ...

    def sigmoid(self, x):
        """``1 / (1 + exp(-x))`` elementwise, without overflow."""
        ...

    def sigmoid_backward(self, gy, y):
        """``gy * y * (1 - y)``, from the sigmoid's output ``y``."""
        ...

    # ---- batch normalization: per channel, axis 1 of (N, C) or (N, C, H, W) ----------
    def batch_norm_stats(self, x):
        """``(mean, var)`` per channel, var biased: mean((x - mean)^2)."""
        ...

    def batch_norm_apply(self, x, mean, inv_std, weight=None, bias=None):
        """``(x_hat, y)``: x_hat = (x - mean) * inv_std, y = x_hat * weight + bias."""
        ...

    def batch_norm_sums(self, gy, x_hat):
        """``(sum(gy), sum(gy * x_hat))`` per channel: dbias and dweight."""
        ...

    def batch_norm_grad(self, gy, x_hat, scale, mean_gy, mean_gy_x_hat):
        """dx = scale * (gy - mean_gy - x_hat * mean_gy_x_hat), per channel."""
        ...


@runtime_checkable
class FastBackend(Backend, Protocol):
    """What engine_room/conv.py's plan asks of a fast backend (numba, cupy), besides
    :class:`Backend`. A layer's batch is cut into parts, one per thread (engine_room/team.py)."""

    conv_winograd: bool  # has WinogradBackend's transforms: conv2d may choose Winograd
    conv_wide_rows: bool  # has WideRowsBackend's methods: conv2d may choose wide rows
    conv_direct: bool  # has DirectConvBackend's loops: conv2d may choose them

    def map(self, fn: Callable, items: Iterable) -> list:
        """``[fn(item) for item in items]``, the items run at once where the backend can."""
        ...

    def batch_parts(self, count: int, multiply_adds: int) -> list[tuple[int, int]]:
        """A batch of ``count`` images, whose products take ``multiply_adds``, cut into
        parts, one (start, stop) each, for :meth:`map` to run at once (one part, the whole
        batch, where more would not pay)."""
        ...

    def pad(self, x, win: Window2d, value=0.0):
        """``x`` in the middle of a canvas of ``value``, ph rows and pw columns around it."""
        ...

    def tap_sum(self, z, win: Window2d, out=None):
        """y[n, o, oh, ow] = sum over i, j of z[i, j, o, n, oh*sh + i - ph, ow*sw + j - pw],
        from z (kh*kw*OC, N*H*W): the "taps" algorithm's second step."""
        ...


@runtime_checkable
class WinogradBackend(FastBackend, Protocol):
    """A fast backend with ``conv_winograd``: Winograd's transforms, as winograd.py's."""

    def winograd_input(self, x, win: Window2d, alg: Algorithm):
        """V = BT d B for every tile d of every image and channel: (n*n, C, N*TH*TW)."""
        ...

    def winograd_output(self, m_tiles, win: Window2d, alg: Algorithm, out=None):
        """y = AT M A for every tile M, cropped to the output: (N, OC, OH, OW)."""
        ...

    def winograd_output_grad(self, gy, win: Window2d, alg: Algorithm):
        """dM = A dy AT for every tile of dy: (n*n, OC, N*TH*TW)."""
        ...

    def winograd_input_grad(self, dv, win: Window2d, alg: Algorithm):
        """dx = B dV BT for every tile, added back where the tiles overlap: (N, C, H, W)."""
        ...


@runtime_checkable
class WideRowsBackend(FastBackend, Protocol):
    """A fast backend with ``conv_wide_rows``: im2col on rows as wide as the padded input's
    (Wp), for stride 1; each output row has Wp - OW extra columns, computed and dropped."""

    def im2col_wide(self, x_pad, win: Window2d, out=None):
        """cols[(c, i, j), (n, p)] = x_pad[n, c].flat[i*Wp + j + p] for p < OH*Wp (zeros
        past the plane's end): (C*kh*kw, N*OH*Wp)."""
        ...

    def widen(self, gy, win: Window2d):
        """dy (N, OC, OH, OW) on the wide rows, (OC, N*OH*Wp), zeros in the extra columns."""
        ...

    def narrow(self, wide, bias, out):
        """The wide rows' product (OC, N*OH*Wp) + bias, extra columns dropped, into ``out``."""
        ...

    def col2im_wide(self, cols, win: Window2d, out=None):
        """The adjoint of im2col_wide: every column added back where it was read, (N, C, H, W)."""
        ...


@runtime_checkable
class DirectConvBackend(FastBackend, Protocol):
    """A fast backend with ``conv_direct``: convolution loops without im2col, for stride 1."""

    def correlate_direct(self, x_pad, weight, bias, y):
        """y[n, o] = bias[o] + sum over c, i, j of weight[o, c, i, j] * x_pad[n, c, i:i+OH, j:j+OW]."""
        ...

    def grad_weight_direct(self, x_pad, gy, weight_shape):
        """dW[o, c, i, j] = sum over n of sum(dy[n, o] * x_pad[n, c, i:i+OH, j:j+OW])."""
        ...


#: A fast backend's capability flags, and the protocol each one asks it to provide when True.
CAPABILITIES = {
    "conv_winograd": WinogradBackend,
    "conv_wide_rows": WideRowsBackend,
    "conv_direct": DirectConvBackend,
}

#: Hooks a backend may have, which their callers look for and do without where absent.
OPTIONAL = {
    "unavailable_reason": "classmethod (): why it cannot run here, or None (the registry)",
    "reseed": "(seed): reseeds the backend's own random generator (mc.manual_seed)",
    "team": "its own team of threads, sized by the thread budget (threads.py)",
}
