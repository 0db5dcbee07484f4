"""D2L 8.2 Networks Using Blocks (VGG): VGG-11, block by block.

    python examples/vgg.py                # VGG-11 with widths / 4, which the book trains
    python examples/vgg.py --ratio 1      # the full VGG-11 of the book's walk-through

Builds VGG-11 from vgg_block as the book does, prints each block's output shape, then
mc.summary's table; --train then trains it with the book's recipe (--epochs, --limit for
a shorter run).
"""

from _network_example import main, parse_arguments

import minicnn as mc
from minicnn import nn


def vgg_block(num_convs, in_channels, out_channels):
    """num_convs 3x3 convolutions with ReLU (padding 1 keeps the size), then a 2x2
    stride-2 max pool that halves height and width."""
    layers = []
    for _ in range(num_convs):
        layers.append(nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1))
        layers.append(nn.ReLU())
        in_channels = out_channels
    layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
    return nn.Sequential(*layers)


# VGG-11: five blocks, (number of convolutions, output channels) each
conv_arch = ((1, 64), (1, 128), (2, 256), (2, 512), (2, 512))


def vgg(conv_arch):
    """The convolutional part, then AlexNet's fully connected head."""
    conv_blks = []
    in_channels = 1
    for num_convs, out_channels in conv_arch:
        conv_blks.append(vgg_block(num_convs, in_channels, out_channels))
        in_channels = out_channels
    return nn.Sequential(
        *conv_blks, nn.Flatten(),
        nn.Linear(out_channels * 7 * 7, 4096), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(4096, 10),
    )  # fmt: skip


def ratio_argument(parser):
    parser.add_argument("--ratio", type=int, default=4, help="divide every width by this")


if __name__ == "__main__":
    args = parse_arguments(__doc__, ratio_argument)
    small_conv_arch = [(pair[0], pair[1] // args.ratio) for pair in conv_arch]
    net = vgg(small_conv_arch)
    main("vgg11", net, args, library_net=mc.models.vgg11(ratio=args.ratio))
