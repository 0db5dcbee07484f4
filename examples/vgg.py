"""D2L 8.2 Networks Using Blocks (VGG): VGG-11, block by block.

    python examples/vgg.py                # VGG-11 with widths / 4, which the book trains
    python examples/vgg.py --ratio 1      # the full VGG-11 of the book's walk-through

Prints each top-level block's output shape, as the book does, then mc.summary's table;
--train then trains it with the book's recipe (--epochs, --limit for a shorter run).
"""

from _network_example import main

import minicnn as mc


def ratio_argument(parser):
    parser.add_argument("--ratio", type=int, default=4, help="divide every width by this")


if __name__ == "__main__":
    main(
        "vgg11",
        __doc__,
        build=lambda args: mc.models.vgg11(ratio=args.ratio),
        add_arguments=ratio_argument,
    )
