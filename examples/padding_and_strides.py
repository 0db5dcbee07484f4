"""D2L 7.3 Padding and Stride: how kernel, padding and stride set the output shape.

OH = (H + 2*ph - kh) // sh + 1,   OW = (W + 2*pw - kw) // sw + 1

python examples/padding_and_strides.py
python examples/padding_and_strides.py --plot     # also save the figure, padding_and_stride.png
"""

import numpy as np

import minicnn as mc
from minicnn import nn


def comp_conv2d(conv2d, X):
    """Run a conv layer on one single-channel image and drop the batch and channel axes."""
    Y = conv2d(X.reshape((1, 1) + X.shape))
    return Y.shape[2:]


CASES = [
    ("kernel 3, padding 1", dict(kernel_size=3, padding=1), (8, 8)),
    ("kernel (5, 3), padding (2, 1)", dict(kernel_size=(5, 3), padding=(2, 1)), (8, 8)),
    ("kernel 3, padding 1, stride 2", dict(kernel_size=3, padding=1, stride=2), (4, 4)),
    ("kernel (3, 5), padding (0, 1), stride (3, 4)",
     dict(kernel_size=(3, 5), padding=(0, 1), stride=(3, 4)), (2, 2)),
]  # fmt: skip


def main():
    X = np.random.default_rng(0).random((8, 8), dtype=np.float32)
    for description, arguments, expected in CASES:
        shape = comp_conv2d(nn.Conv2d(1, 1, **arguments), X)
        print(f"8x8 input, {description}: output {shape} (book: {expected})")


if __name__ == "__main__":
    from _plot import main_with_plot

    main_with_plot(__doc__, main, mc.viz.padding_and_stride, "padding_and_stride")
