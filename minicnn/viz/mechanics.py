"""The chapter's mechanics as pictures (D2L 7.2-7.5), each computed by minicnn itself.

- :func:`corr2d`: the book's 3x3 input and 2x2 kernel, the window, the kernel and the
  output element they make highlighted (0*0 + 1*1 + 3*2 + 4*3 = 19);
- :func:`padding_and_stride`: an 8x8 input padded, and where the first windows of a
  strided kernel fall;
- :func:`im2col`: each window of a small input becomes one column; col2im adds the
  columns back, so pixels in several windows receive the sum: an adjoint, not an inverse;
- :func:`pooling`: the book's 2x2 max and average pooling of the 3x3 input.
"""

from __future__ import annotations

import numpy

from ._figure import finish, subplots

BOOK_X = numpy.arange(9.0).reshape(3, 3)
BOOK_K = numpy.array([[0.0, 1.0], [2.0, 3.0]])
WINDOW, KERNEL, OUTPUT, PADDING = "#f6c26b", "#9cc3e6", "#a9d8a0", "#e4e4e4"


def _grid(axes, values, title, shade=None, colors=None, fmt="{:g}"):
    """Draw ``values`` as a table of numbers; ``shade`` is a set of (row, column) cells to
    fill (or ``colors``, a dict of cell -> color)."""
    rows, columns = values.shape
    colors = dict(colors or {})
    for cell in shade or ():
        colors[cell] = WINDOW
    for i in range(rows):
        for j in range(columns):
            axes.add_patch(_cell(j, rows - 1 - i, colors.get((i, j), "white")))
            text = "" if values[i, j] is None or numpy.isnan(values[i, j]) else fmt.format(values[i, j])
            axes.text(j + 0.5, rows - 1 - i + 0.5, text, ha="center", va="center", fontsize=11)
    axes.set_xlim(0, columns)
    axes.set_ylim(0, rows)
    axes.set_aspect("equal")
    axes.axis("off")
    axes.set_title(title, fontsize=11)


def _cell(x, y, color):
    from matplotlib.patches import Rectangle

    return Rectangle((x, y), 1, 1, facecolor=color, edgecolor="black", linewidth=1)


def _outline(x, y, side, color):
    from matplotlib.patches import Rectangle

    return Rectangle((x, y), side, side, fill=False, edgecolor=color, linewidth=3)


def corr2d(path=None):
    """The book's figure of 2-D cross-correlation: input, kernel, output, first element."""
    from ..functional import corr2d as correlate

    output = correlate(BOOK_X, BOOK_K).numpy()
    figure, axes = subplots(1, 3, figsize=(7.5, 2.8),
                                gridspec_kw={"width_ratios": [3, 2, 2]})  # fmt: skip
    _grid(axes[0], BOOK_X, "input", shade={(0, 0), (0, 1), (1, 0), (1, 1)})
    _grid(axes[1], BOOK_K, "kernel", colors={(i, j): KERNEL for i in range(2) for j in range(2)})
    _grid(axes[2], output, "output", colors={(0, 0): OUTPUT})
    terms = " + ".join(f"{x:g}x{k:g}" for x, k in zip(BOOK_X[:2, :2].ravel(), BOOK_K.ravel(), strict=False))
    figure.supxlabel(f"{terms} = {output[0, 0]:g}", fontsize=11)
    return finish(figure, path)


def padding_and_stride(path=None, kernel=3, padding=1, stride=2, size=8):
    """A ``size`` x ``size`` input with ``padding`` zeros around it (grey), the windows of
    the first two outputs of a ``kernel`` x ``kernel`` window moving by ``stride``, and
    the output's shape: floor((size + 2*padding - kernel) / stride) + 1 per side."""
    from ..backend import Window2d

    win = Window2d.of("padding_and_stride", (1, 1, size, size), kernel, stride, padding)
    side = size + 2 * padding
    values = numpy.full((side, side), numpy.nan)
    values[padding : padding + size, padding : padding + size] = numpy.arange(size * size).reshape(size, size)
    colors = {(i, j): PADDING for i in range(side) for j in range(side)
              if not (padding <= i < padding + size and padding <= j < padding + size)}  # fmt: skip
    for ow, color in ((0, WINDOW), (1, KERNEL)):  # outputs (0, 0) and (0, 1)
        for i in range(kernel):
            for j in range(kernel):
                colors[(i, ow * stride + j)] = color
    figure, axes = subplots(1, 2, figsize=(8, 4.4), gridspec_kw={"width_ratios": [side, win.ow]})
    _grid(axes[0], values, f"{size}x{size} input, padding {padding}", colors=colors)
    out = numpy.full((win.oh, win.ow), numpy.nan)
    _grid(axes[1], out, f"output {win.oh}x{win.ow}", colors={(0, 0): WINDOW, (0, 1): KERNEL})
    figure.supxlabel(f"kernel {kernel}x{kernel}, stride {stride}: "
                     f"({size} + 2x{padding} - {kernel}) // {stride} + 1 = {win.oh}")  # fmt: skip
    return finish(figure, path)


def im2col(path=None):
    """im2col on a 3x3 input and a 2x2 window: four windows, four columns (each column's
    cells in its window's color); then col2im of columns of ones: each pixel gets the
    number of windows it is in. The overlaps add up, so col2im is im2col's adjoint (what
    backward needs), not its inverse."""
    from ..backend import Window2d, get_backend

    reference = get_backend("numpy")
    win = Window2d.of("im2col", (1, 1, 3, 3), 2, 1, 0)
    x = numpy.arange(1.0, 10.0).reshape(1, 1, 3, 3)
    cols = reference.im2col(x, win)  # (4 kernel offsets, 4 windows)
    counts = reference.col2im(numpy.ones_like(cols), win)[0, 0]
    palette = ["#f6c26b", "#9cc3e6", "#a9d8a0", "#e7a3c4"]
    figure, axes = subplots(1, 3, figsize=(9, 3.2), gridspec_kw={"width_ratios": [3, 4, 3]})
    _grid(axes[0], x[0, 0], "input: 4 windows of 2x2")
    for k, (oh, ow) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):  # each window's outline
        inset = 0.06 * (k + 1)
        axes[0].add_patch(_outline(ow + inset, 3 - oh - 2 + inset, 2 - 2 * inset, palette[k]))
    _grid(axes[1], cols, "im2col: one column per window",
          colors={(i, k): palette[k] for k in range(4) for i in range(4)})  # fmt: skip
    _grid(axes[2], counts, "col2im(ones): overlaps add up")
    return finish(figure, path)


def pooling(path=None):
    """The book's 2x2 max and average pooling of the 3x3 input, first window highlighted."""
    from ..functional import pool2d

    figure, axes = subplots(1, 3, figsize=(7.5, 2.8), gridspec_kw={"width_ratios": [3, 2, 2]})
    _grid(axes[0], BOOK_X, "input", shade={(0, 0), (0, 1), (1, 0), (1, 1)})
    _grid(axes[1], pool2d(BOOK_X, 2, "max").numpy(), "max pooling 2x2", colors={(0, 0): OUTPUT})
    _grid(axes[2], pool2d(BOOK_X, 2, "avg").numpy(), "average pooling 2x2", colors={(0, 0): OUTPUT})
    return finish(figure, path)
