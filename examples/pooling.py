"""D2L 7.5 Pooling: max and average pooling, padding and stride, multiple channels.

python examples/pooling.py
python examples/pooling.py --plot     # also save the figure, pooling.png
"""

import numpy as np

import minicnn as mc
from minicnn import nn
from minicnn.functional import pool2d


def main():
    X = np.array([[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.0]])
    print("max pooling 2x2:\n", pool2d(X, (2, 2)).numpy())
    print("average pooling 2x2:\n", pool2d(X, (2, 2), "avg").numpy())

    X = np.arange(16, dtype=np.float32).reshape((1, 1, 4, 4))
    print("X =\n", X)
    print("MaxPool2d(3):\n", nn.MaxPool2d(3)(X).numpy())
    print("MaxPool2d(3, padding=1, stride=2):\n", nn.MaxPool2d(3, padding=1, stride=2)(X).numpy())
    pool = nn.MaxPool2d((2, 3), stride=(2, 3), padding=(0, 1))
    print("MaxPool2d((2, 3), stride=(2, 3), padding=(0, 1)):\n", pool(X).numpy())

    X = mc.functional.cat((mc.tensor(X), mc.tensor(X + 1)), 1)
    print("two channels in, two channels out:\n", nn.MaxPool2d(3, padding=1, stride=2)(X).numpy())


if __name__ == "__main__":
    from _plot import main_with_plot

    main_with_plot(__doc__, main, mc.viz.pooling, "pooling")
