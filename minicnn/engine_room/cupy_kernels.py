"""The sliding-window kernels of the cupy backend, one CUDA thread per output element
(and batch norm's elementwise passes, fused).

The NumPy kernels (backend/numpy_.py) loop over the kh*kw kernel offsets and move a
whole strided slice at each: on a GPU that is kh*kw kernel launches (25 for LeNet's
5x5 windows, twice as many in backward), each too small to fill the device. Here each
is one ``cupy.ElementwiseKernel``: thread ``i`` computes output element ``i`` and loops
over the offsets itself.

Backward passes gather: a thread owns one input pixel and adds up every window term
that lands on it, in ascending offset ``i*kw + j`` (NumPy's order). No two threads write
one element, so there are no atomics and every run gives the same bits.

Index names follow the NumPy kernels: (n, c, h, w) an input pixel, (oh, ow) an output
one, (i, j) the kernel offset (``ki``, ``kj`` here, as ``i`` is CuPy's element index),
``ph``, ``pw`` the padding and ``sh``, ``sw`` the stride.
"""

from __future__ import annotations

import functools

#: the shape parameters every kernel takes, in this order (see :func:`window_args`)
WINDOW_PARAMS = "int32 N, int32 C, int32 H, int32 W, int32 OH, int32 OW, " \
    "int32 kh, int32 kw, int32 sh, int32 sw, int32 ph, int32 pw"  # fmt: skip

# (n, c, oh, ow) of output element i in an (N, C, OH, OW) array
_OUTPUT_PIXEL = """
    idx rest = i;
    const idx ow = rest % OW; rest /= OW;
    const idx oh = rest % OH; rest /= OH;
    const idx c = rest % C, n = rest / C;
"""

# (n, c, h, w) of input element i in an (N, C, H, W) array
_INPUT_PIXEL = """
    idx rest = i;
    const idx w = rest % W; rest /= W;
    const idx h = rest % H; rest /= H;
    const idx c = rest % C, n = rest / C;
"""


def _over_window(body: str) -> str:
    """``body`` for each offset (ki, kj) of output pixel (oh, ow)'s window, with (h, w) the
    input pixel there; offsets that fall on the padding are skipped."""
    return f"""
    for (int ki = 0; ki < kh; ki++) {{
        const idx h = oh * sh + ki - ph;
        if (h < 0 || h >= H) continue;
        for (int kj = 0; kj < kw; kj++) {{
            const idx w = ow * sw + kj - pw;
            if (w < 0 || w >= W) continue;
{body}
        }}
    }}
"""


def _over_windows_of(body: str) -> str:
    """``body`` for each offset (ki, kj) and the window (oh, ow) that reads input pixel
    (h, w) at that offset, if one does (none between strides or past the output's edge),
    in ascending offset ki*kw + kj: the order the NumPy kernels add in."""
    return f"""
    for (int ki = 0; ki < kh; ki++) {{
        for (int kj = 0; kj < kw; kj++) {{
            const idx hh = h + ph - ki, ww = w + pw - kj;
            if (hh < 0 || ww < 0 || hh % sh != 0 || ww % sw != 0) continue;
            const idx oh = hh / sh, ow = ww / sw;
            if (oh >= OH || ow >= OW) continue;
{body}
        }}
    }}
"""


_IM2COL = """
    // cols[c, ki, kj, n, oh, ow] = x[n, c, oh*sh + ki - ph, ow*sw + kj - pw], 0 in the padding
    idx rest = i;
    const idx ow = rest % OW; rest /= OW;
    const idx oh = rest % OH; rest /= OH;
    const idx n = rest % N; rest /= N;
    const idx kj = rest % kw; rest /= kw;
    const idx ki = rest % kh, c = rest / kh;
    const idx h = oh * sh + ki - ph, w = ow * sw + kj - pw;
    cols = (0 <= h && h < H && 0 <= w && w < W) ? x[((n * C + c) * H + h) * W + w] : (T)0;
"""

_COL2IM = f"""{_INPUT_PIXEL}
    // dx[n, c, h, w] = sum over (ki, kj) of cols[c, ki, kj, n, oh, ow], (oh, ow) the
    // window that read (h, w) at that offset
    T sum = 0;
    {_over_windows_of("sum += cols[((((c * kh + ki) * kw + kj) * N + n) * OH + oh) * OW + ow];")}
    dx = sum;
"""

_TAP_SUM = f"""{_OUTPUT_PIXEL}
    // y[n, c, oh, ow] = sum over (ki, kj) of z[ki, kj, c, n, oh*sh + ki - ph, ow*sw + kj - pw]
    // (c: the output channel here; taps on the padding are zero)
    T sum = 0;
    {_over_window("sum += z[((((ki * kw + kj) * C + c) * N + n) * H + h) * W + w];")}
    y = sum;
"""

_KEEP_THE_LARGEST = """
            const T v = x[((n * C + c) * H + h) * W + w];
            if (v > best || (isnan(v) && !isnan(best))) {
                best = v;
                arg = ki * kw + kj;
            }"""

_MAX_POOL = f"""{_OUTPUT_PIXEL}
    // y = the largest x in the window (a NaN beats any number), argmax = its offset
    // ki*kw + kj, the first one on ties; padding never wins
    T best = neg_inf;
    int arg = 0;
    {_over_window(_KEEP_THE_LARGEST)}
    y = best;
    argmax = arg;
"""

_ADD_IF_IT_WON = """
            const idx k = ((n * C + c) * OH + oh) * OW + ow;
            if (argmax[k] == ki * kw + kj) sum += dy[k];"""

_MAX_POOL_BACKWARD = f"""{_INPUT_PIXEL}
    // dx[n, c, h, w] = sum of dy over the windows whose maximum was this pixel
    T sum = 0;
    {_over_windows_of(_ADD_IF_IT_WON)}
    dx = sum;
"""

_WINDOW_SUM = f"""{_OUTPUT_PIXEL}
    // y[n, c, oh, ow] = sum over (ki, kj) of x[n, c, oh*sh + ki - ph, ow*sw + kj - pw]
    T sum = 0;
    {_over_window("sum += x[((n * C + c) * H + h) * W + w];")}
    y = sum;
"""

_WINDOW_SUM_BACKWARD = f"""{_INPUT_PIXEL}
    // dx[n, c, h, w] = sum of dy over the windows that contain this pixel
    T sum = 0;
    {_over_windows_of("sum += dy[((n * C + c) * OH + oh) * OW + ow];")}
    dx = sum;
"""

# Batch norm's elementwise passes, each fused into one kernel: x is (N, C) or
# (N, C, H, W), the per-channel vectors (C,), and HW the pixels per channel and image.
_CHANNEL = """
    const idx c = (idx)i / HW % C;
"""

_BATCH_NORM_APPLY = (
    _CHANNEL
    + """
    // x_hat = (x - mean) * inv_std,  y = x_hat * weight + bias  (per channel c)
    x_hat = (x - mean[c]) * inv_std[c];
    y = x_hat * weight[c] + bias[c];
"""
)

_BATCH_NORM_GRAD = (
    _CHANNEL
    + """
    // dx = scale * (gy - mean_gy - x_hat * mean_gy_x_hat)  (per channel c)
    dx = scale[c] * (gy - mean_gy[c] - x_hat * mean_gy_x_hat[c]);
"""
)

_CHANNEL_PARAMS = "int32 C, int32 HW"

# The activations and SGD's update, one kernel each where NumPy's expression launches
# one per operation (the sigmoid's seven: minimum, exp, abs, negative, exp, add, divide).
# Each computes NumPy's expression, in its order.
_SIGMOID = """
    // 1 / (1 + e) where x >= 0, e / (1 + e) where x < 0, e = exp(-|x|)
    const T e = exp(-fabs(x));
    y = (x >= (T)0 ? (T)1 : e) / ((T)1 + e);
"""
_SIGMOID_BACKWARD = """
    dx = gy * y * ((T)1 - y);
"""
_RELU_BACKWARD = """
    // gy * (y > 0), as NumPy multiplies (a NaN gradient stays NaN)
    dx = gy * (T)(y > (T)0);
"""
_AXPY = """
    y = y + a * x;
"""

#: name -> (parameters, outputs, body)
SOURCES = {
    "im2col": (f"raw T x, {WINDOW_PARAMS}", "T cols", _IM2COL),
    "col2im": (f"raw T cols, {WINDOW_PARAMS}", "T dx", _COL2IM),
    "tap_sum": (f"raw T z, {WINDOW_PARAMS}", "T y", _TAP_SUM),
    "max_pool2d": (f"raw T x, T neg_inf, {WINDOW_PARAMS}", "T y, A argmax", _MAX_POOL),
    "max_pool2d_backward": (f"raw T dy, raw A argmax, {WINDOW_PARAMS}", "T dx",
                            _MAX_POOL_BACKWARD),
    "window_sum": (f"raw T x, {WINDOW_PARAMS}", "T y", _WINDOW_SUM),
    "window_sum_backward": (f"raw T dy, {WINDOW_PARAMS}", "T dx", _WINDOW_SUM_BACKWARD),
    "batch_norm_apply": ("T x, raw T mean, raw T inv_std, raw T weight, raw T bias, "
                         f"{_CHANNEL_PARAMS}", "T x_hat, T y", _BATCH_NORM_APPLY),
    "batch_norm_grad": ("T gy, T x_hat, raw T scale, raw T mean_gy, raw T mean_gy_x_hat, "
                        f"{_CHANNEL_PARAMS}", "T dx", _BATCH_NORM_GRAD),
    "sigmoid": ("T x", "T y", _SIGMOID),
    "sigmoid_backward": ("T gy, T y", "T dx", _SIGMOID_BACKWARD),
    "relu_backward": ("T gy, T y", "T dx", _RELU_BACKWARD),
    "axpy": ("T a, T x", "T y", _AXPY),
}  # fmt: skip


@functools.cache
def kernel(cupy, name: str, wide: bool = False):
    """The ``cupy.ElementwiseKernel`` called ``name`` (compiled on first use, per dtype).

    Its index arithmetic is in ``idx``: 32-bit ints, unless ``wide`` (an array of 2**31
    elements or more) asks for 64-bit ones, whose division a GPU runs many times slower.
    """
    params, outputs, body = SOURCES[name]
    index_type = "long long" if wide else "int"
    return cupy.ElementwiseKernel(
        params,
        outputs,
        body,
        f"minicnn_{name}_{index_type.replace(' ', '_')}",
        preamble=f"typedef {index_type} idx;",
    )


def window_args(win) -> tuple[int, ...]:
    """A window's values for WINDOW_PARAMS, in order."""
    return (win.n, win.c, win.h, win.w, win.oh, win.ow,
            win.kh, win.kw, win.sh, win.sw, win.ph, win.pw)  # fmt: skip
