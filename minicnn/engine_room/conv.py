"""conv2d in the engine room: a table of algorithms, and the batch cut among threads.

Read this after ``functional/conv.py``, whose :class:`~minicnn.functional.conv.Conv2d`
computes every layer the chapter's way: im2col and one matrix product forward, then
``dW = dy @ cols^T`` and ``dx = col2im(W^T @ dy)``. The same sums can be computed in
other orders that move less memory or multiply less; which one pays depends on the
layer's shape. Each way is one small class below, a row of :data:`ALGORITHMS`, and
:func:`plan` takes, for each pass, the first row that applies to the layer:

=====================  ==========  ===  ===  ==============================================
row                    switch      fwd  bwd  applies to
=====================  ==========  ===  ===  ==============================================
Winograd F(2x2, 3x3),  winograd    yes  yes  a backend with ``conv_winograd`` (numba's),
Winograd F(2x2, 5x5)                         3x3 or 5x5 at stride 1, wide enough layers:
                                             16/36 and 36/100 of the multiplications
                                             (winograd.py); backward where it pays
direct                 direct      yes  yes  a backend with ``conv_direct`` (numba's),
                                             stride 1, one input channel: loops over the
                                             taps, no columns (backward: dx by col2im)
taps                   taps        yes       stride 1, kh*kw > 1, fewer output than input
                                             channels: each tap's product at every input
                                             pixel, then each output adds its kh*kw taps
dx by conv on wide     dx_by_conv,      yes  dx by conv below, dy's columns on wide rows
rows                   wide_rows
dx by conv             dx_by_conv       yes  stride 1, padding below the kernel, fewer
                                             output than input channels: dx is dy
                                             convolved with the kernel turned 180 degrees,
                                             dW a product with the same columns of dy
im2col, wide rows      wide_rows   yes  yes  a backend with ``conv_wide_rows`` (numba's),
                                             stride 1, small maps: im2col's columns as long
                                             as whole padded rows (forward only with at
                                             most WIDE_ROWS_FORWARD_MAX_CHANNELS outputs)
im2col                 im2col      yes  yes  every layer: the chapter's algorithm, its
                                             columns unfolded a chunk of images at a time
                                             (small enough to stay in cache), the batch cut
                                             into one part per thread (``backend.map``)
=====================  ==========  ===  ===  ==============================================

A switch turns rows off, for one block or a whole run (``mc.config.conv_off``, the
environment variable ``MINICNN_CONV_OFF=winograd,taps``). With every row off, a pass
runs functional/conv.py's loop: that is ``mc.config.reference``, the chapter's im2col
and nothing else. A new algorithm is one class with ``name``, ``switches``, ``applies``
(reading what the backend declares, ``conv_winograd`` and the like) and ``forward``
and/or ``backward``, and one row in :data:`ALGORITHMS`.

Every threshold is in engine_room/tuning.py. All rows compute the same sums as the
textbook path, up to rounding: tests/ops/test_conv2d.py holds forward and gradients
equal to PyTorch's for one layer per row, chosen so that the table picks that row, and
asserts which rows each of its fast-path cases takes on each backend.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from .. import config
from ..backend import Window2d
from . import tuning, winograd


# ---- the table ----------------------------------------------------------------------
class ConvAlgorithm:
    """One row of the table: a way to compute conv2d's forward pass, its backward, or both.

    ``name`` is what mc.summary shows; ``switches`` name the switches in mc.config that
    must all be on for the row to be used. ``applies`` says whether the row computes
    this layer's forward pass (a row without ``forward`` is never asked), and
    ``applies_backward`` its backward (by default the same condition).
    """

    name: str
    switches: tuple[str, ...]
    forward = None  # (backend, x, weight, win, bias) -> y
    backward = None  # (backend, gy, x, weight, win, need_x, need_w) -> (dx or None, dW or None)

    def applies(self, backend, win: Window2d, weight_shape) -> bool:
        return True

    def applies_backward(self, backend, win: Window2d, weight_shape) -> bool:
        return self.applies(backend, win, weight_shape)

    @property
    def backward_phrase(self) -> str:
        """How mc.summary says that backward is this row's after another row's forward."""
        return f"backward by {self.name}"

    def __repr__(self) -> str:
        return f"<conv2d algorithm {self.name!r}>"


class Winograd(ConvAlgorithm):
    """Winograd's F(m x m, r x r) for an r x r kernel (``winograd.ALGORITHMS[r]``),
    forward and backward (:func:`_correlate_winograd`, :func:`_winograd_backward`): on
    layers with at least WINOGRAD_MIN_CHANNELS channels in and out and outputs at least
    WINOGRAD_MIN_SIDE on a side. Backward is Winograd's too where it pays: a 5x5
    kernel's always (its im2col and col2im move 25/9 of a 3x3's), a 3x3's where wide or
    large enough."""

    switches = ("winograd",)

    def __init__(self, kernel: int):
        self.kernel = kernel

    @property
    def alg(self) -> winograd.Algorithm:
        return winograd.ALGORITHMS[self.kernel]

    @property
    def name(self) -> str:
        return f"Winograd {self.alg}"

    def applies(self, backend, win, weight_shape) -> bool:
        channels, side = min(win.c, weight_shape[0]), min(win.oh, win.ow)
        return (backend.conv_winograd and win.kh == self.kernel and winograd.choose(win) is not None
                and channels >= tuning.WINOGRAD_MIN_CHANNELS and side >= tuning.WINOGRAD_MIN_SIDE)  # fmt: skip

    def applies_backward(self, backend, win, weight_shape) -> bool:
        channels, side = min(win.c, weight_shape[0]), min(win.oh, win.ow)
        large = channels >= tuning.WINOGRAD_WIDE_CHANNELS or side >= tuning.WINOGRAD_NARROW_MIN_SIDE
        return self.applies(backend, win, weight_shape) and (self.alg.r >= 5 or large)

    def forward(self, backend, x, weight, win, bias):
        return _correlate_winograd(backend, x, weight, win, self.alg, bias)

    def backward(self, backend, gy, x, weight, win, need_x, need_w):
        return _winograd_backward(backend, gy, x, weight, win, self.alg, need_x, need_w)


class Direct(ConvAlgorithm):
    """Loops over the kernel's taps, reading the padded image in place (numba's
    ``correlate_direct``, :func:`_correlate_direct`): for one input channel, where
    im2col would write kh*kw copies of the image for a product only kh*kw deep. dW by
    the same loops (:func:`_grad_weight_direct`), dx by col2im."""

    name, switches = "direct", ("direct",)

    def applies(self, backend, win, weight_shape) -> bool:
        return backend.conv_direct and _stride_1(win) and win.c == 1

    def forward(self, backend, x, weight, win, bias):
        return _correlate_direct(backend, x, weight, win, bias)

    def backward(self, backend, gy, x, weight, win, need_x, need_w):
        grad_x = _grad_input(backend, gy, weight, win) if need_x else None
        return grad_x, _grad_weight_direct(backend, gy, x, weight, win) if need_w else None


class Taps(ConvAlgorithm):
    """y as a sum of shifted products, one GEMM for every tap (:func:`_correlate_by_taps`):
    less memory traffic than im2col's columns when a layer narrows (OC < C)."""

    name, switches = "taps", ("taps",)

    def applies(self, backend, win, weight_shape) -> bool:
        out_channels, _, kh, kw = weight_shape
        return _stride_1(win) and kh * kw > 1 and out_channels < win.c

    def forward(self, backend, x, weight, win, bias):
        return _correlate_by_taps(backend, x, weight, win, bias)


class DxByConvolution(ConvAlgorithm):
    """dx as dy convolved with the kernel turned around, dW from the same columns of dy
    (:func:`_backward_from_dy`): for a stride-1 layer that narrows, with padding below
    the kernel's size (dy's window then pads by kh-1-ph >= 0)."""

    name, switches, wide = "dx by conv", ("dx_by_conv",), False

    @property
    def backward_phrase(self) -> str:
        return self.name

    def applies_backward(self, backend, win, weight_shape) -> bool:
        out_channels, _, kh, kw = weight_shape
        return _stride_1(win) and win.ph < kh and win.pw < kw and out_channels < win.c

    def backward(self, backend, gy, x, weight, win, need_x, need_w):
        dy_win = _dy_window(win, weight.shape)
        return _backward_from_dy(backend, gy, x, weight, dy_win, self.wide, need_x, need_w)


class DxByConvolutionOnWideRows(DxByConvolution):
    """:class:`DxByConvolution` with dy's columns on wide rows, where dy's padded rows
    are short enough (:func:`_on_wide_rows` of dy's window)."""

    name, switches, wide = "dx by conv on wide rows", ("dx_by_conv", "wide_rows"), True

    def applies_backward(self, backend, win, weight_shape) -> bool:
        return (super().applies_backward(backend, win, weight_shape)
                and _on_wide_rows(backend, _dy_window(win, weight_shape)))  # fmt: skip


class Im2colOnWideRows(ConvAlgorithm):
    """im2col's columns as long as whole padded rows, copied in long runs
    (:func:`_correlate_wide`, :func:`_backward_wide`): on small maps, where im2col's
    short runs cost more than the few columns the product computes and drops. Forward
    only with at most WIDE_ROWS_FORWARD_MAX_CHANNELS outputs, where the product is
    small beside the unfolding; backward at any width."""

    name, switches = "im2col, wide rows", ("wide_rows",)

    @property
    def backward_phrase(self) -> str:
        return "backward by im2col on wide rows"

    def applies(self, backend, win, weight_shape) -> bool:
        return (self.applies_backward(backend, win, weight_shape)
                and weight_shape[0] <= tuning.WIDE_ROWS_FORWARD_MAX_CHANNELS)  # fmt: skip

    def applies_backward(self, backend, win, weight_shape) -> bool:
        return _on_wide_rows(backend, win)

    def forward(self, backend, x, weight, win, bias):
        return _correlate_wide(backend, x, weight, win, bias)

    def backward(self, backend, gy, x, weight, win, need_x, need_w):
        return _backward_wide(backend, gy, x, weight, win, need_x, need_w)


class Im2col(ConvAlgorithm):
    """The chapter's algorithm (:func:`_correlate`, :func:`_grad_input`,
    :func:`_grad_weight`), a chunk of images at a time, the batch cut among threads."""

    name, switches = "im2col", ("im2col",)

    def forward(self, backend, x, weight, win, bias):
        return _correlate(backend, x, weight, win, bias)

    def backward(self, backend, gy, x, weight, win, need_x, need_w):
        grad_x = _grad_input(backend, gy, weight, win) if need_x else None
        return grad_x, _grad_weight(backend, gy, x, weight, win) if need_w else None


#: The table, in order of preference: each pass takes the first row that applies.
ALGORITHMS: tuple[ConvAlgorithm, ...] = (
    Winograd(kernel=3),
    Winograd(kernel=5),
    Direct(),
    Taps(),
    DxByConvolutionOnWideRows(),
    DxByConvolution(),
    Im2colOnWideRows(),
    Im2col(),
)

#: Every switch of the table, in mc.config.conv_off's vocabulary.
SWITCHES: frozenset[str] = frozenset(s for row in ALGORITHMS for s in row.switches)


def rows_switched_on() -> list[ConvAlgorithm]:
    """The rows mc.config lets run, in the table's order: none of their switches off,
    and none at all under the reference."""
    off = config.conv_off
    if not off <= SWITCHES:
        config.check_switches()
    if config.reference:
        return []
    return [row for row in ALGORITHMS if off.isdisjoint(row.switches)]


def plan(backend, win: Window2d, weight_shape) -> ConvPlan | None:
    """How ``backend`` computes a conv2d of window ``win`` and weight ``weight_shape``:
    the first row of the table that applies to each pass, or None where every row is
    off (each pass then the chapter's loop, in functional/conv.py)."""
    weight_shape = tuple(weight_shape)
    rows = rows_switched_on()
    forward = next((row for row in rows if row.forward is not None
                    and row.applies(backend, win, weight_shape)), None)  # fmt: skip
    backward = next((row for row in rows if row.backward is not None
                     and row.applies_backward(backend, win, weight_shape)), None)  # fmt: skip
    if forward is None and backward is None:
        return None
    return ConvPlan(backend, win, weight_shape, forward, backward)


@dataclass(frozen=True, eq=False)
class ConvPlan:
    """One layer's algorithms, forward and backward: rows of the table, or None for
    the chapter's loop (functional/conv.py runs it)."""

    backend: object
    win: Window2d
    weight_shape: tuple[int, int, int, int]
    forward_algorithm: ConvAlgorithm | None
    backward_algorithm: ConvAlgorithm | None

    @property
    def algorithm(self) -> str:
        """The forward pass's: "im2col", "im2col, wide rows", "taps", "direct",
        "Winograd F(2x2, 3x3)" or "Winograd F(2x2, 5x5)"."""
        return "im2col" if self.forward_algorithm is None else self.forward_algorithm.name

    @property
    def backward_name(self) -> str:
        """The backward pass's: a row's name, or "im2col" for the chapter's."""
        return "im2col" if self.backward_algorithm is None else self.backward_algorithm.name

    @property
    def description(self) -> str:
        """Forward's algorithm, and backward's where it is another row's (mc.summary's
        column): "taps, dx by conv", "Winograd F(2x2, 3x3), backward by im2col"."""
        if self.backward_name == self.algorithm:
            return self.algorithm
        backward = self.backward_algorithm
        return f"{self.algorithm}, {'backward by im2col' if backward is None else backward.backward_phrase}"

    def forward(self, x, weight, bias=None):
        return self.forward_algorithm.forward(self.backend, x, weight, self.win, bias)

    def backward(self, gy, x, weight, need_x: bool, need_w: bool):
        """(dx or None, dW or None)."""
        return self.backward_algorithm.backward(self.backend, gy, x, weight, self.win, need_x, need_w)


def _stride_1(win: Window2d) -> bool:
    return (win.sh, win.sw) == (1, 1)


def _dy_window(win: Window2d, weight_shape) -> Window2d:
    """The window of dx as a convolution: over dy, padded by (kh-1-ph, kw-1-pw)."""
    out_channels, _, kh, kw = weight_shape
    return Window2d(win.n, out_channels, win.oh, win.ow, kh, kw, 1, 1,
                    kh - 1 - win.ph, kw - 1 - win.pw)  # fmt: skip


def _on_wide_rows(backend, win: Window2d) -> bool:
    """Whether im2col runs on wide rows: a backend with them, stride 1, a window of more
    than one pixel, and padded rows at most WIDE_ROWS_MAX_RATIO times as wide as the
    output's (the product computes the difference and drops it)."""
    if not backend.conv_wide_rows or not _stride_1(win):
        return False
    padded_width = win.padded_shape[3]
    return win.kh * win.kw > 1 and padded_width <= tuning.WIDE_ROWS_MAX_RATIO * win.ow


# ---- im2col, the batch cut into parts among threads -------------------------------
def _correlate(backend, x, weight, win: Window2d, bias=None):
    """``W @ im2col(x) + bias`` chunk by chunk, laid out as (N, OC, OH, OW).

    The chunks are independent, so the numba backend's team (engine_room/team.py) cuts
    the batch into one part per thread and runs the parts' chunk loops at once.
    """
    w = weight.reshape(weight.shape[0], -1)
    y = backend.empty((win.n, w.shape[0], win.oh, win.ow), x.dtype)

    def compute(part):
        images, part_win = part
        y_part = y[images]
        for chunk, chunk_win, cols in _unfold(backend, x[images], part_win, w.nbytes):
            out = backend.matmul(w, cols)
            if bias is not None:
                out += bias.reshape(-1, 1)
            out = out.reshape(w.shape[0], chunk_win.n, win.oh, win.ow)
            y_part[chunk] = out.transpose(1, 0, 2, 3)

    backend.map(compute, _parts(backend, win, weight.shape[0]))
    return y


def _grad_input(backend, gy, weight, win: Window2d):
    """dx = col2im(W^T @ dy), chunk by chunk, each part of the batch on its thread."""
    w = weight.reshape(weight.shape[0], -1)
    grad_x = backend.empty(win.input_shape, gy.dtype)

    def compute(part):
        images, part_win = part
        gy_part, grad_x_part = gy[images], grad_x[images]
        for chunk, chunk_win in _chunks(backend, part_win, gy.itemsize, weight.nbytes):
            cols = backend.matmul(w.T, _as_columns(backend, gy_part[chunk]))
            backend.col2im(cols, chunk_win, out=grad_x_part[chunk])

    backend.map(compute, _parts(backend, win, weight.shape[0]))
    return grad_x


def _grad_weight(backend, gy, x, weight, win: Window2d):
    """dW = sum over chunks of dy[chunk] @ im2col(x[chunk])^T, each part summing its own
    (:class:`_WeightGradSum`). Backward unfolds each chunk again rather than keeping the
    forward pass's columns: they would be the largest memory of a step.

    The product is ``dot``, not ``@``: NumPy's matmul keeps the GIL when its output has
    at most 500 elements (numpy/numpy#11821), and a small layer's dW (LeNet's first,
    6 x 25) would then run its parts one after the other, however long its sum.
    """

    def sum_of_part(part):
        images, part_win = part
        x_part, gy_part = x[images], gy[images]
        grad_w = _WeightGradSum(backend, weight)
        for chunk, _, cols in _unfold(backend, x_part, part_win, weight.nbytes):
            grad_w.add(_as_columns(backend, gy_part[chunk]), cols)
        return grad_w

    return _WeightGradSum.of_parts(backend.map(sum_of_part, _parts(backend, win, weight.shape[0])))


def _correlate_by_taps(backend, x, weight, win: Window2d, bias=None):
    """The same convolution (stride 1), computed the other way round: every kernel tap's
    product at every input pixel first, then each output adds up the kh*kw it needs::

        z[(i, j, o), n, h, w] = sum over c of weight[o, c, i, j] * x[n, c, h, w]      # one GEMM
        y[n, o, oh, ow] = sum over i, j of z[(i, j, o), n, oh + i - ph, ow + j - pw]  # tap_sum

    The product reads x itself instead of its kh*kw-fold columns and writes kh*kw*OC rows
    instead of im2col's C*kh*kw: less memory traffic when OC < C (DenseNet's growth layers).
    """
    out_channels, in_channels, kh, kw = weight.shape
    taps = weight.transpose(2, 3, 0, 1).reshape(kh * kw * out_channels, in_channels)
    y = backend.empty((win.n, out_channels, win.oh, win.ow), x.dtype)

    def compute(part):
        images, part_win = part
        x_part, y_part = x[images], y[images]
        for chunk, chunk_win in _chunks(backend, part_win, x.itemsize, weight.nbytes):
            z = backend.matmul(taps, _as_columns(backend, x_part[chunk]))  # (kh*kw*OC, b*H*W)
            backend.tap_sum(z, chunk_win, out=y_part[chunk])
            if bias is not None:
                y_part[chunk] += bias.reshape(-1, 1, 1)

    backend.map(compute, _parts(backend, win, weight.shape[0]))
    return y


def _correlate_direct(backend, x, weight, win: Window2d, bias=None):
    """Stride 1 without im2col: each part of the batch padded, then the backend's direct
    loops (numba_kernels.py's ``_correlate_direct``) on its thread::

        y[n, o] = bias[o] + sum over c, i, j of weight[o, c, i, j] * x_pad[n, c, i : i + OH, j : j + OW]

    With one input channel, im2col writes kh*kw copies of the image for a product whose
    inner dimension is only kh*kw: memory traffic, which two cores share no faster than
    one. The loops read the image in place, and run on both cores at full speed (LeNet's
    first layer at batch 256: 3.0 -> 1.7 ms forward, 3.3 -> 2.2 ms for dW).
    """
    y = backend.empty((win.n, weight.shape[0], win.oh, win.ow), x.dtype)

    def compute(part):
        images, part_win = part
        backend.correlate_direct(backend.pad(x[images], part_win), weight, bias, y[images])

    backend.map(compute, _parts(backend, win, weight.shape[0]))
    return y


def _grad_weight_direct(backend, gy, x, weight, win: Window2d):
    """dW of :func:`_correlate_direct`, each part of the batch summing its own::

        dW[o, c, i, j] = sum over n of sum(dy[n, o] * x_pad[n, c, i : i + OH, j : j + OW])
    """

    def sum_of_part(part):
        images, part_win = part
        return backend.grad_weight_direct(backend.pad(x[images], part_win), gy[images], weight.shape)

    return sum(backend.map(sum_of_part, _parts(backend, win, weight.shape[0])))


def tap_sum(backend, z, win: Window2d, out=None):
    """Add up, for each output pixel, the kernel taps' products that land on it::

        y[n, o, oh, ow] = sum over i, j of z[i, j, o, n, oh*sh + i - ph, ow*sw + j - pw]

    where z, given as (kh*kw*OC, N*H*W), holds every tap's product at every input pixel
    (zero where that pixel is padding). Returns y (N, OC, OH, OW), in ``out`` if given.
    The NumPy way, one strided add per tap; the backends' ``tap_sum`` compile it.
    """
    z_pad = backend.pad(z.reshape(-1, win.n, win.h, win.w), win)  # (kh*kw*OC, N, Hp, Wp)
    z_pad = z_pad.reshape((win.kh * win.kw, -1) + z_pad.shape[1:])
    y = backend.xp.zeros((win.n, z_pad.shape[1], win.oh, win.ow), dtype=z.dtype)
    for k, (i, j) in enumerate(win.offsets()):
        y += z_pad[k][win.window_slice(i, j)].transpose(1, 0, 2, 3)
    if out is None:
        return y
    out[...] = y
    return out


# ---- im2col on wide rows ------------------------------------------------------------
def _correlate_wide(backend, x, weight, win: Window2d, bias=None):
    """``W @ im2col(x) + bias`` (stride 1), on columns as long as the padded rows::

        cols[(c, i, j), (n, p)] = x_pad[n, c].flat[i*Wp + j + p]     p < OH*Wp
        y[n, o, oh, ow] = (W @ cols)[o, (n, oh*Wp + ow)] + bias[o]   ow < OW

    Flatten a padded plane: output (oh, ow) sits at p = oh*Wp + ow, and tap (i, j) reads
    the plane at p + i*Wp + j (the direct loops' wide rows). So each row of the columns
    is one contiguous run of the plane, (OH-1)*Wp + OW long, where im2col copies OH runs
    of OW: on small maps its short runs, not the product, are the cost (LeNet's second
    layer, 10-pixel rows: 3.7x faster to unfold). The product computes Wp - OW outputs a
    row more, which are dropped: forward, that pays only while the product is small
    beside the unfolding, with few output channels (WIDE_ROWS_FORWARD_MAX_CHANNELS);
    backward (:func:`_backward_wide`), col2im's short runs cost more still.
    """
    w = weight.reshape(weight.shape[0], -1)
    y = backend.empty((win.n, w.shape[0], win.oh, win.ow), x.dtype)

    def compute(part):
        images, part_win = part
        y_part = y[images]
        for chunk, _, cols in _unfold_wide(backend, x[images], part_win, w.nbytes):
            backend.narrow(backend.matmul(w, cols), bias, out=y_part[chunk])

    backend.map(compute, _parts(backend, win, weight.shape[0]))
    return y


def _backward_wide(backend, gy, x, weight, win: Window2d, need_x: bool, need_w: bool):
    """(dx or None, dW or None) of :func:`_correlate_wide`, in one pass over the chunks::

        dy_wide = dy on the columns' wide rows, zeros in the Wp - OW extra columns
        dW^T += cols @ dy_wide^T                 # cols: x's wide columns, unfolded again
        dx[chunk] = col2im_wide(W^T @ dy_wide)   # each run added back where it was read

    The extra columns hold pixels of the next row over (a finite input's): their
    products with dy's zeros add nothing to dW, and W^T's products with those zeros are
    zeros added to dx. dy is laid out wide once for both gradients, and W^T @ dy_wide is
    written over the columns dW has just used.
    """
    w = weight.reshape(weight.shape[0], -1)
    grad_x = backend.empty(win.input_shape, gy.dtype) if need_x else None

    def compute(part):  # dx of the part's images, and the part's sum of dW
        images, part_win = part
        gy_part = gy[images]
        grad_w = _WeightGradSum(backend, weight)
        for chunk, chunk_win, cols in _unfold_wide(backend, x[images], part_win, weight.nbytes, need_w):
            gy_wide = backend.widen(gy_part[chunk], chunk_win)
            if need_w:
                grad_w.add(gy_wide, cols)
            if need_x:
                backend.xp.matmul(w.T, gy_wide, out=cols)
                backend.col2im_wide(cols, chunk_win, out=grad_x[images][chunk])
        return grad_w

    grad_ws = backend.map(compute, _parts(backend, win, weight.shape[0]))
    return grad_x, _WeightGradSum.of_parts(grad_ws) if need_w else None


def _backward_from_dy(backend, gy, x, weight, dy_win: Window2d, wide: bool, need_x, need_w):
    """(dx or None, dW or None) of a stride-1 layer with fewer output than input
    channels, both from dy's columns. dx is what it also is, a convolution of dy padded by
    (kh-1-ph, kw-1-pw) with the kernel turned 180 degrees and its in and out channels
    swapped; dW is a product with the same columns::

        cols[(o, i', j'), (n, h, w)] = dy_pad[n, o, h + i', w + j']       # dy's window
        dx[chunk] = W_flipped @ cols                                      # (C, n*H*W)
        dW[o, c, i, j] = (cols @ x[chunk]^T)[(o, kh-1-i, kw-1-j), c]      # summed over chunks

    since dx[n, c, h, w] = sum over o, i', j' of weight[o, c, kh-1-i', kw-1-j'] * cols[...]
    and dW[o, c, i, j] = sum over n, h, w of x[n, c, h, w] * dy[n, o, h - i + ph, w - j + pw].
    The chapter folds C*kh*kw rows back for dx (col2im) and unfolds x's C*kh*kw rows again
    for dW; dy's columns have OC*kh*kw rows, unfolded once for both: less memory traffic
    where a layer narrows (DenseNet's 32-channel growth layers read 64 to 224: 0.5-0.65x
    the chapter's time at batch 32, 2 threads). Where OC = C the chapter's way is as fast
    or faster (ResNet-18's layers from 128 channels: 0.83-0.87x this way's time), as it
    needs no copy of the kernel turned around, nor of dW turned back. On wide rows
    (``wide``) x is laid out wide too, with zeros in the extra columns, where dx's product
    writes the values it drops.
    """
    out_channels, in_channels, kh, kw = weight.shape
    flipped = _flipped(backend, weight) if need_x else None
    grad_x = backend.empty(x.shape, gy.dtype) if need_x else None
    unfold = _unfold_wide if wide else _unfold

    def compute(part):  # dx of the part's images, and the part's sum of cols @ x^T
        images, part_win = part
        x_part, grad_x_part = x[images], grad_x[images] if need_x else None
        product = _SumOfProducts(backend)
        for chunk, chunk_win, cols in unfold(backend, gy[images], part_win, weight.nbytes):
            if need_w:
                x_chunk = x_part[chunk]
                x_columns = backend.widen(x_chunk, chunk_win) if wide else _as_columns(backend, x_chunk)
                product.add(cols, x_columns.T)
            if need_x and wide:
                backend.narrow(backend.matmul(flipped, cols), None, out=grad_x_part[chunk])
            elif need_x:
                out = backend.matmul(flipped, cols).reshape(in_channels, chunk_win.n, part_win.oh, part_win.ow)
                grad_x_part[chunk] = out.transpose(1, 0, 2, 3)
        return product.total

    products = backend.map(compute, _parts(backend, dy_win, in_channels))
    grad_w = None
    if need_w:
        taps = _sum_of_parts(products).reshape(out_channels, kh, kw, in_channels)[:, ::-1, ::-1]
        grad_w = backend.empty(weight.shape, weight.dtype)
        grad_w[...] = taps.transpose(0, 3, 1, 2)
    return grad_x, grad_w


def _flipped(backend, weight):
    """The kernel turned 180 degrees, in and out channels swapped, as dx's matrix::

        flipped[c, (o, i, j)] = weight[o, c, kh-1-i, kw-1-j]
    """
    out_channels, in_channels, kh, kw = weight.shape
    flipped = backend.empty((in_channels, out_channels * kh * kw), weight.dtype)
    flipped.reshape(in_channels, out_channels, kh, kw)[...] = weight[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)
    return flipped


def _wide_chunks(win: Window2d, itemsize: int, weight_bytes: int):
    """(slice of images, their window): about CONV_CHUNK_BYTES of wide columns each, and
    at least two chunks to a part of two images or more, so that a small batch does not
    unfold a whole part at once (LeNet's second layer at batch 32: 1.3 MB a thread,
    which the pool would hold between steps, and the step's memory would be 2x PyTorch's).
    """
    per_image = win.c * win.kh * win.kw * win.oh * win.padded_shape[3] * itemsize
    half = -(-win.n // 2)
    yield from _even_chunks(win, max(1, min(half, max(tuning.CONV_CHUNK_BYTES, weight_bytes) // per_image)))


def _unfold_wide(backend, x, win: Window2d, weight_bytes: int, unfold: bool = True):
    """(slice of images, their window, their wide columns) for each chunk of ``x``
    (padded here, a part at a time), in one reused buffer; with ``unfold`` False, the
    buffer as it is, for a chunk's wide columns of another kind (dx's)."""
    x_pad, buffer = backend.pad(x, win) if unfold else None, None
    for images, chunk_win in _wide_chunks(win, x.itemsize, weight_bytes):
        size = chunk_win.c * chunk_win.kh * chunk_win.kw * chunk_win.n * chunk_win.oh * chunk_win.padded_shape[3]
        if buffer is None:
            buffer = backend.empty(size, x.dtype)
        if unfold:
            yield images, chunk_win, backend.im2col_wide(x_pad[images], chunk_win, out=buffer[:size])
        else:
            yield images, chunk_win, buffer[:size].reshape(-1, chunk_win.n * chunk_win.oh * chunk_win.padded_shape[3])


# ---- Winograd -------------------------------------------------------------------------
def _correlate_winograd(backend, x, weight, win: Window2d, alg: winograd.Algorithm, bias=None):
    """The same stride-1 convolution by Winograd's F(m x m, r x r), chunk by chunk::

        U = G weight GT                   # (n*n, OC, C), once
        V = BT x_tile B                   # (n*n, C, b*TH*TW)   backend.winograd_input
        y[chunk] = AT (U @ V) A + bias    # n*n products         backend.winograd_output
    """
    u = winograd.transform_weight(backend.xp, weight, alg)
    y = backend.empty((win.n, weight.shape[0], win.oh, win.ow), x.dtype)

    def compute(part):
        images, part_win = part
        x_part, y_part = x[images], y[images]
        for chunk, chunk_win in _winograd_chunks(part_win, alg, weight.shape[0], x.itemsize):
            v = backend.winograd_input(x_part[chunk], chunk_win, alg)
            backend.winograd_output(backend.matmul(u, v), chunk_win, alg, out=y_part[chunk])
            if bias is not None:
                y_part[chunk] += bias.reshape(-1, 1, 1)

    backend.map(compute, _parts(backend, win, weight.shape[0]))
    return y


def _winograd_backward(backend, gy, x, weight, win: Window2d, alg, need_x, need_w):
    """(dx, dW) of :func:`_correlate_winograd`: each step's adjoint, in reverse::

        dM = A dy AT                    # (n*n, OC, b*TH*TW)  backend.winograd_output_grad
        dU += dM @ V^T                  # (n*n, OC, C), V recomputed from x
        dx[chunk] = B (U^T @ dM) BT     # added back where tiles overlap: winograd_input_grad
        dW = GT dU G
    """
    xp = backend.xp
    u = winograd.transform_weight(xp, weight, alg)
    grad_x = backend.empty(win.input_shape, gy.dtype) if need_x else None

    def compute(part):  # dx of the part's images, and the part's sum of dU
        images, part_win = part
        x_part, gy_part = x[images], gy[images]
        grad_u = _SumOfProducts(backend)
        for chunk, chunk_win in _winograd_chunks(part_win, alg, weight.shape[0], gy.itemsize):
            grad_m = backend.winograd_output_grad(gy_part[chunk], chunk_win, alg)
            if need_w:
                v = backend.winograd_input(x_part[chunk], chunk_win, alg)
                grad_u.add(grad_m, v.transpose(0, 2, 1))
            if need_x:
                grad_v = backend.matmul(u.transpose(0, 2, 1), grad_m)
                grad_x[images][chunk] = backend.winograd_input_grad(grad_v, chunk_win, alg)
        return grad_u.total

    grad_us = backend.map(compute, _parts(backend, win, weight.shape[0]))
    grad_w = winograd.transform_weight_grad(xp, _sum_of_parts(grad_us), alg) if need_w else None
    return grad_x, grad_w


def _winograd_chunks(win: Window2d, alg, out_channels: int, itemsize: int):
    """(slice of images, their window) with about WINOGRAD_CHUNK_BYTES of tiles each."""
    th, tw = alg.tiles(win)
    per_image = alg.n**2 * max(win.c, out_channels) * th * tw * itemsize
    yield from _even_chunks(win, max(1, min(win.n, tuning.WINOGRAD_CHUNK_BYTES // per_image)))


# ---- chunks and parts --------------------------------------------------------------
def _parts(backend, win: Window2d, rows: int):
    """(slice of images, their window): the batch cut into one part per thread of the
    backend (one part, the whole batch, on one thread or for a small layer), for
    products of ``rows`` rows with the columns of ``win``: their multiply-adds measure the
    work (the layer's OC * C*kh*kw * N*OH*OW, whichever the window's channels are)."""
    multiply_adds = rows * win.c * win.kh * win.kw * win.n * win.oh * win.ow
    for start, stop in backend.batch_parts(win.n, multiply_adds):
        yield slice(start, stop), replace(win, n=stop - start)


class _SumOfProducts:
    """A part's sum over its chunks of the products ``a @ b`` (dW's, or Winograd's dU),
    kept in an array of ``shape`` (by default the product's) from the backend's pool.
    The first product is written where the sum is kept, with no zeros to add it to, and
    each later one into a scratch buffer and added in: no temporary per chunk, and a sum
    that a leaf keeps as its gradient without a copy (engine_room/adopt.py), as the pool
    handed it out. (ResNet-18's 512-channel 3x3 layer at batch 32, 2 threads: backward
    43 -> 26 ms.)"""

    def __init__(self, backend, shape=None):
        self.backend, self.shape, self.total, self._scratch = backend, shape, None, None

    def add(self, a, b) -> None:
        xp = self.backend.xp
        multiply = xp.dot if a.ndim == 2 else xp.matmul  # dot lets go of the GIL: _grad_weight
        product_shape = a.shape[:-1] + b.shape[-1:]
        if self.total is None:
            self.total = self.backend.empty(self.shape or product_shape, xp.result_type(a, b))
            multiply(a, b, out=self.total.reshape(product_shape))
            return
        if self._scratch is None:
            self._scratch = self.backend.empty(product_shape, self.total.dtype)
        multiply(a, b, out=self._scratch)
        self.total.reshape(product_shape)[...] += self._scratch


class _WeightGradSum:
    """dW = sum over chunks of dy_cols @ cols^T, a part's sum, in whichever order of the
    product costs less (dy_cols: (OC, P), cols: (C*kh*kw, P), P the chunk's pixels).

    Small weights take the product transposed, dW^T = cols @ dy_cols^T, which BLAS runs
    faster with the long C*kh*kw side first (32 outputs from 128 channels, 3 images of
    24x24 a chunk: 1.3 against 1.9 ms), and a transposing copy after the sum. From
    DW_IN_LAYOUT_MIN_ELEMENTS the copy costs more than BLAS gains (256 x 256 x 3 x 3: 2.1
    ms against none; 512 x 512 x 3 x 3, rows of power-of-two strides that thrash the
    cache: 17 ms), and dW is computed in its own layout."""

    def __init__(self, backend, weight):
        self.backend, self.weight_shape = backend, weight.shape
        self.in_layout = weight.size >= tuning.DW_IN_LAYOUT_MIN_ELEMENTS
        self.sum = _SumOfProducts(backend, weight.shape if self.in_layout else None)

    def add(self, gy_cols, cols) -> None:
        if self.in_layout:
            self.sum.add(gy_cols, cols.T)
        else:
            self.sum.add(cols, gy_cols.T)

    @staticmethod
    def of_parts(sums: list[_WeightGradSum]):
        """dW: the parts' sums added up, laid out as the weight."""
        total = _sum_of_parts([part.sum.total for part in sums])
        first = sums[0]
        if first.in_layout:
            return total
        grad_w = first.backend.empty(first.weight_shape, total.dtype)
        grad_w.reshape(total.shape[1], total.shape[0])[...] = total.T
        return grad_w


def _sum_of_parts(totals):
    """The parts' sums (one per thread) added up in the first one's memory."""
    total = totals[0]
    for other in totals[1:]:
        total += other
    return total


def _as_columns(backend, gy):
    """(b, C, H, W) -> (C, b*H*W), the layout of ``W @ cols``: ``gy`` itself when b = 1,
    else a copy into memory from the backend."""
    if gy.shape[0] == 1:
        return gy.reshape(gy.shape[1], -1)
    columns = backend.empty((gy.shape[1], gy.size // gy.shape[1]), gy.dtype)
    columns.reshape(gy.shape[1], gy.shape[0], *gy.shape[2:])[...] = gy.transpose(1, 0, 2, 3)
    return columns


def _chunks(backend, win: Window2d, itemsize: int, weight_bytes: int):
    """(slice of images, their window) for chunks of equal size covering the batch.

    On the CPU a chunk holds about CONV_CHUNK_BYTES of columns (so it stays in cache), and
    at least as many as the weight has bytes: BLAS copies the weight into its own layout
    for every product. A 1x1 window goes one image at a time, as its columns need no
    unfolding then (unless the image is so small that many tiny products would cost more
    than the copy). A GPU has no such cache to fit but pays for every kernel launch, so
    there a chunk is as large as GPU_CONV_CHUNK_BYTES allows.
    """
    per_image = win.c * win.kh * win.kw * win.oh * win.ow * itemsize
    on_cpu = backend.device == "cpu"
    budget = tuning.CONV_CHUNK_BYTES if on_cpu else tuning.GPU_CONV_CHUNK_BYTES
    size = max(1, min(win.n, max(budget, weight_bytes) // per_image))
    pointwise = (win.kh, win.kw, win.sh, win.sw, win.ph, win.pw) == (1, 1, 1, 1, 0, 0)
    if pointwise and win.oh * win.ow >= tuning.POINTWISE_MIN_PIXELS and on_cpu:
        size = 1  # one image's columns are the image itself, a view
    yield from _even_chunks(win, size)


def _even_chunks(win: Window2d, size: int):
    """Chunks of at most ``size`` images covering the batch, as even as they can be."""
    size = -(-win.n // -(-win.n // size))  # as many chunks, evened out
    for start in range(0, win.n, size):
        chunk_win = replace(win, n=min(size, win.n - start))
        yield slice(start, start + chunk_win.n), chunk_win


def _unfold(backend, x, win: Window2d, weight_bytes: int):
    """(slice of images, their window, their columns) for each chunk, in one reused buffer."""
    buffer = None
    for images, chunk_win in _chunks(backend, win, x.itemsize, weight_bytes):
        size = chunk_win.c * chunk_win.kh * chunk_win.kw * chunk_win.n * chunk_win.oh * chunk_win.ow
        if buffer is None:
            buffer = backend.empty(size, x.dtype)
        yield images, chunk_win, backend.im2col(x[images], chunk_win, out=buffer[:size])
