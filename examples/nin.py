"""D2L 8.3 Network in Network (NiN), block by block.

    python examples/nin.py               # 224x224, the book's walk-through
    python examples/nin.py --train       # the book's recipe: lr 0.1, batch 128, 224 px

Builds NiN from nin_block as the book does, prints each block's output shape, then
mc.summary's table; --train then trains it with the book's recipe (--epochs, --limit for
a shorter run).
"""

from _network_example import main, parse_arguments

from minicnn import nn


def nin_block(in_channels, out_channels, kernel_size, strides, padding):
    """An ordinary convolution, then two 1x1 convolutions: a small fully connected
    network applied to each pixel's channels."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, strides, padding), nn.ReLU(),
        nn.Conv2d(out_channels, out_channels, kernel_size=1), nn.ReLU(),
        nn.Conv2d(out_channels, out_channels, kernel_size=1), nn.ReLU(),
    )  # fmt: skip


net = nn.Sequential(
    nin_block(1, 96, kernel_size=11, strides=4, padding=0),
    nn.MaxPool2d(3, stride=2),
    nin_block(96, 256, kernel_size=5, strides=1, padding=2),
    nn.MaxPool2d(3, stride=2),
    nin_block(256, 384, kernel_size=3, strides=1, padding=1),
    nn.MaxPool2d(3, stride=2),
    nn.Dropout(0.5),
    # There are 10 label classes: one channel each
    nin_block(384, 10, kernel_size=3, strides=1, padding=1),
    nn.AdaptiveAvgPool2d((1, 1)),
    # Transform the four-dimensional output into two-dimensional output, (batch size, 10)
    nn.Flatten(),
)

if __name__ == "__main__":
    main("nin", net, parse_arguments(__doc__))
