"""D2L 8.4 Multi-Branch Networks (GoogLeNet), stage by stage.

    python examples/googlenet.py

Prints each top-level block's output shape, as the book does, then mc.summary's table.
"""

import argparse

import numpy as np

import minicnn as mc


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, help="input height and width (default: the book's)")
    args = parser.parse_args()
    net = mc.models.googlenet()
    size = args.size or net.resolution
    X = mc.tensor(np.random.default_rng(0).random((1, 1, size, size), dtype=np.float32))
    net.check_input(X)  # a clear error for a size the network cannot take
    net.eval()  # one image: batch norm in training would need more than one value per channel
    with mc.no_grad():
        for layer in net:
            X = layer(X)
            print(layer.__class__.__name__, "output shape:\t", X.shape)
    summary = getattr(mc, "summary", None)
    if summary is None:
        print("(mc.summary is not available in this version: no per-layer table)")
    else:
        print()
        print(summary(net, (1, 1, size, size)))


if __name__ == "__main__":
    main()
