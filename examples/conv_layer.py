"""D2L 7.2 Convolutions for Images: cross-correlation, edge detection, learning a kernel.

python examples/conv_layer.py
python examples/conv_layer.py --plot     # also save the figure, corr2d.png
"""

import numpy as np

import minicnn as mc
from minicnn import nn
from minicnn.functional import corr2d


def edge_image() -> np.ndarray:
    """A 6x8 image, white (1) with a black (0) band in columns 2..5."""
    X = np.ones((6, 8))
    X[:, 2:6] = 0
    return X


def learn_kernel(X, Y, steps=10, lr=3e-2, log=print):
    """Fit a 1x2 kernel so that conv(X) reproduces Y, by plain gradient descent on the
    sum of squared errors (the book's loop)."""
    conv2d = nn.Conv2d(1, 1, kernel_size=(1, 2), bias=False).double()
    X, Y = X.reshape(1, 1, *X.shape), Y.reshape(1, 1, *Y.shape)
    for i in range(steps):
        Y_hat = conv2d(X)
        loss = ((Y_hat - Y) ** 2).sum()
        conv2d.zero_grad()
        loss.backward()
        conv2d.weight.data -= lr * conv2d.weight.grad.data  # the update, by hand
        if (i + 1) % 2 == 0:
            log(f"epoch {i + 1}, loss {loss.item():.3f}")
    return conv2d.weight.numpy().reshape(1, 2)


def main():
    mc.manual_seed(0)
    X = np.array([[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.0]])
    K = np.array([[0.0, 1.0], [2.0, 3.0]])
    print("corr2d(X, K) =\n", corr2d(X, K).numpy())

    X = edge_image()
    K = np.array([[1.0, -1.0]])
    Y = corr2d(X, K).numpy()
    print("edge image:\n", X)
    print("edges (1: white to black, -1: black to white):\n", Y)
    print("the transposed image has no vertical edges:\n", corr2d(X.T, K).numpy())

    print("learning the kernel from X and Y:")
    print("learned kernel:", learn_kernel(X, Y))


if __name__ == "__main__":
    from _plot import main_with_plot

    main_with_plot(__doc__, main, mc.viz.corr2d, "corr2d")
