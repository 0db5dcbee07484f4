"""The geometry of a sliding window: what conv2d and every pooling layer share.

A window of ``kernel`` = (kh, kw) slides over an input of height H and width W that
is first padded by ``padding`` = (ph, pw) on each side, moving ``stride`` = (sh, sw)
at a time. The output has (D2L section 6.3)

    OH = (H + 2*ph - kh) // sh + 1
    OW = (W + 2*pw - kw) // sw + 1

positions, and output position (oh, ow) reads padded rows oh*sh .. oh*sh + kh - 1 and
padded columns ow*sw .. ow*sw + kw - 1. Turned around, kernel offset (i, j) reads one
strided slice of the padded input for all outputs at once (:meth:`Window2d.window_slice`):
the reference kernels loop over the offsets (:meth:`Window2d.offsets`), not the outputs.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass


def pair(value, name: str, op: str) -> tuple[int, int]:
    """``3 -> (3, 3)``; ``(3, 5) -> (3, 5)``; anything else is a clear error."""
    if isinstance(value, int) and not isinstance(value, bool):
        return (value, value)
    if (
        isinstance(value, tuple | list)
        and len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    ):
        return (int(value[0]), int(value[1]))
    raise TypeError(f"{op}: {name} must be an int or a pair of ints, got {value!r}")


@dataclass(frozen=True)
class Window2d:
    """Shapes of one sliding-window operation on an (N, C, H, W) input."""

    n: int
    c: int
    h: int
    w: int
    kh: int
    kw: int
    sh: int
    sw: int
    ph: int
    pw: int

    @property
    def oh(self) -> int:
        return (self.h + 2 * self.ph - self.kh) // self.sh + 1

    @property
    def ow(self) -> int:
        return (self.w + 2 * self.pw - self.kw) // self.sw + 1

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        return (self.n, self.c, self.h, self.w)

    @property
    def output_shape(self) -> tuple[int, int, int, int]:
        return (self.n, self.c, self.oh, self.ow)

    @property
    def padded_shape(self) -> tuple[int, int, int, int]:
        return (self.n, self.c, self.h + 2 * self.ph, self.w + 2 * self.pw)

    def offsets(self) -> Iterator[tuple[int, int]]:
        """The kernel offsets (i, j) in ascending ``i*kw + j``: the order the kernels add in."""
        for i in range(self.kh):
            for j in range(self.kw):
                yield i, j

    def window_slice(self, i: int, j: int) -> tuple[slice, slice, slice, slice]:
        """The padded-input pixels that kernel offset (i, j) touches, for every output: the
        index of ``x_pad[:, :, i : i + sh*OH : sh, j : j + sw*OW : sw]``, of shape (N, C, OH,
        OW), whose element (n, c, oh, ow) is the pixel output (oh, ow) reads at (i, j)."""
        return (
            slice(None),
            slice(None),
            slice(i, i + self.sh * (self.oh - 1) + 1, self.sh),
            slice(j, j + self.sw * (self.ow - 1) + 1, self.sw),
        )

    @classmethod
    def of(cls, op: str, x_shape, kernel, stride, padding, max_padding=None) -> Window2d:
        """Validate the arguments of ``op`` against an input shape and build the window.

        ``max_padding`` is pooling's rule (PyTorch): padding at most half the kernel.
        """
        if len(x_shape) != 4:
            raise ValueError(f"{op}: expected a 4-D input (N, C, H, W), got shape {tuple(x_shape)}")
        kh, kw = pair(kernel, "kernel_size", op)
        sh, sw = pair(stride, "stride", op)
        ph, pw = pair(padding, "padding", op)
        if kh <= 0 or kw <= 0:
            raise ValueError(f"{op}: kernel_size must be positive, got {(kh, kw)}")
        if sh <= 0 or sw <= 0:
            raise ValueError(f"{op}: stride must be positive, got {(sh, sw)}")
        if ph < 0 or pw < 0:
            raise ValueError(f"{op}: padding must be non-negative, got {(ph, pw)}")
        if max_padding == "half" and (2 * ph > kh or 2 * pw > kw):
            raise ValueError(
                f"{op}: padding {(ph, pw)} must be at most half the kernel size {(kh, kw)}"
            )
        n, c, h, w = (int(d) for d in x_shape)
        if kh > h + 2 * ph or kw > w + 2 * pw:
            raise ValueError(
                f"{op}: kernel {(kh, kw)} is larger than the padded input "
                f"{(h + 2 * ph, w + 2 * pw)} (input {(h, w)}, padding {(ph, pw)}); "
                f"input shape {tuple(x_shape)}"
            )
        return cls(n, c, h, w, kh, kw, sh, sw, ph, pw)
