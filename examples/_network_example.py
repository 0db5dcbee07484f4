"""What every network example does once its network is built: walk one image through it
as the book does, print mc.summary's table, and with --train train it with the book's
recipe."""

import argparse

import numpy as np

import minicnn as mc


def walk_through(net, size, check):
    """The book's loop: print each top-level block's output shape for one image."""
    X = mc.tensor(np.random.default_rng(0).random((1, 1, size, size), dtype=np.float32))
    check(X)  # a clear error, naming the network, for a size it cannot take
    net.eval()  # one image: batch norm in training would need more than one value per channel
    with mc.no_grad():
        for layer in net:
            X = layer(X)
            print(layer.__class__.__name__, "output shape:\t", X.shape)


def parse_arguments(doc, add_arguments=None):
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--size", type=int, help="input height and width (default: the book's)")
    parser.add_argument("--train", action="store_true", help="then train it (the book's recipe)")
    parser.add_argument("--epochs", type=int, help="with --train: default the book's 10")
    parser.add_argument("--limit", type=int, help="with --train: use only the first LIMIT images")
    if add_arguments:
        add_arguments(parser)
    return parser.parse_args()


def main(model, net, args, library_net=None):
    """Run a network example on ``net``, the book's network that the example built.
    ``mc.models.get(model)``, the library's copy of it (tests/test_examples_networks.py
    holds the two equal), knows the sizes it accepts and the book's resolution."""
    library_net = library_net or mc.models.get(model)
    size = args.size or library_net.resolution
    walk_through(net, size, library_net.check_input)
    print()
    print(mc.summary(net, (1, 1, size, size)))
    if args.train:
        print()
        mc.train.train_recipe(model, epochs=args.epochs, limit=args.limit, resize=args.size,
                              net=net)  # fmt: skip
