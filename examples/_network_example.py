"""What every network example does: build the network, walk one image through it as the
book does, print mc.summary's table, and with --train train it with the book's recipe."""

import argparse

import numpy as np

import minicnn as mc


def walk_through(net, size):
    """The book's loop: print each top-level block's output shape for one image."""
    X = mc.tensor(
        np.random.default_rng(0).random((1, net.in_channels, size, size), dtype=np.float32)
    )
    net.check_input(X)  # a clear error for a size the network cannot take
    net.eval()  # one image: batch norm in training would need more than one value per channel
    with mc.no_grad():
        for layer in net:
            X = layer(X)
            print(layer.__class__.__name__, "output shape:\t", X.shape)


def main(model, doc, build=None, add_arguments=None):
    """Run a network example: ``model`` names it in ``mc.models``; ``build(args)`` may
    build it differently (VGG's ``--ratio``)."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--size", type=int, help="input height and width (default: the book's)")
    parser.add_argument("--train", action="store_true", help="then train it (the book's recipe)")
    parser.add_argument("--epochs", type=int, help="with --train: default the book's 10")
    parser.add_argument("--limit", type=int, help="with --train: use only the first LIMIT images")
    if add_arguments:
        add_arguments(parser)
    args = parser.parse_args()
    net = build(args) if build else mc.models.get(model)
    size = args.size or net.resolution
    walk_through(net, size)
    print()
    print(mc.summary(net, (1, net.in_channels, size, size)))
    if args.train:
        print()
        mc.train.train_recipe(model, epochs=args.epochs, limit=args.limit, resize=args.size)
