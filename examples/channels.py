"""D2L 7.4 Multiple Input and Multiple Output Channels, and the 1x1 convolution.

python examples/channels.py
python examples/channels.py --plot     # also save the figure, im2col.png
"""

import numpy as np

import minicnn as mc
from minicnn.functional import corr2d_multi_in, corr2d_multi_in_out, corr2d_multi_in_out_1x1


def book_inputs():
    X = np.array(
        [
            [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.0]],
            [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]],
        ]
    )
    K = np.array([[[0.0, 1.0], [2.0, 3.0]], [[1.0, 2.0], [3.0, 4.0]]])
    return X, K  # fmt: skip


def main():
    X, K = book_inputs()
    print("two input channels:\n", corr2d_multi_in(X, K).numpy())

    K3 = np.stack((K, K + 1, K + 2))
    print("kernel shape for three output channels:", K3.shape)
    print("three output channels:\n", corr2d_multi_in_out(X, K3).numpy())

    rng = np.random.default_rng(0)
    X = rng.normal(0, 1, (3, 3, 3))
    K = rng.normal(0, 1, (2, 3, 1, 1))
    Y1 = corr2d_multi_in_out_1x1(X, K).numpy()
    Y2 = corr2d_multi_in_out(X, K).numpy()
    Y3 = mc.functional.conv2d(X[None], K).numpy()[0]
    print("1x1 convolution as a matrix product, |difference| summed:", np.abs(Y1 - Y2).sum())
    print("and as im2col conv2d:", np.abs(Y1 - Y3).sum())


if __name__ == "__main__":
    from _plot import main_with_plot

    main_with_plot(__doc__, main, mc.viz.im2col, "im2col")
