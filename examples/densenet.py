"""D2L 8.7 Densely Connected Networks (DenseNet), block by block.

    python examples/densenet.py           # 96x96, the size the book trains at
    python examples/densenet.py --train   # the book's recipe: lr 0.1, batch 256, 96 px

Builds DenseNet from conv_block, DenseBlock and transition_block as the book does, prints
each block's output shape, then mc.summary's table; --train then trains it with the
book's recipe (--epochs, --limit for a shorter run).
"""

from _network_example import main, parse_arguments

from minicnn import nn
from minicnn.nn import functional as F


def conv_block(input_channels, num_channels):
    """ResNet's modified order: batch norm, ReLU, then a 3x3 convolution."""
    return nn.Sequential(
        nn.BatchNorm2d(input_channels), nn.ReLU(),
        nn.Conv2d(input_channels, num_channels, kernel_size=3, padding=1),
    )  # fmt: skip


class DenseBlock(nn.Module):
    """num_convs conv_blocks, each one's output concatenated onto its input."""

    def __init__(self, num_convs, input_channels, num_channels):
        super().__init__()
        layer = []
        for i in range(num_convs):
            layer.append(conv_block(num_channels * i + input_channels, num_channels))
        self.net = nn.Sequential(*layer)

    def forward(self, X):
        for blk in self.net:
            Y = blk(X)
            # Concatenate the input and output of each block on the channel dimension
            X = F.cat((X, Y), dim=1)
        return X


def transition_block(input_channels, num_channels):
    """A 1x1 convolution cuts the channels; a 2x2 stride-2 average pool halves the size."""
    return nn.Sequential(
        nn.BatchNorm2d(input_channels), nn.ReLU(),
        nn.Conv2d(input_channels, num_channels, kernel_size=1),
        nn.AvgPool2d(kernel_size=2, stride=2),
    )  # fmt: skip


b1 = nn.Sequential(
    nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3),
    nn.BatchNorm2d(64), nn.ReLU(),
    nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
)  # fmt: skip

# num_channels: the current number of channels
num_channels, growth_rate = 64, 32
num_convs_in_dense_blocks = [4, 4, 4, 4]
blks = []
for i, num_convs in enumerate(num_convs_in_dense_blocks):
    blks.append(DenseBlock(num_convs, num_channels, growth_rate))
    # The number of output channels in the previous dense block
    num_channels += num_convs * growth_rate
    # A transition layer that halves the number of channels between the dense blocks
    if i != len(num_convs_in_dense_blocks) - 1:
        blks.append(transition_block(num_channels, num_channels // 2))
        num_channels = num_channels // 2

net = nn.Sequential(
    b1, *blks,
    nn.BatchNorm2d(num_channels), nn.ReLU(),
    nn.AdaptiveAvgPool2d((1, 1)),
    nn.Flatten(),
    nn.Linear(num_channels, 10),
)  # fmt: skip

if __name__ == "__main__":
    main("densenet", net, parse_arguments(__doc__))
