"""DenseNet (D2L 8.7 "Densely Connected Networks (DenseNet)"): where ResNet adds a
block's input to its output, DenseNet concatenates them on the channel axis."""

from __future__ import annotations

from .. import nn
from ..functional import cat
from .network import Network


def conv_block(input_channels: int, num_channels: int) -> nn.Sequential:
    """ResNet's modified order: batch norm, ReLU, then a 3x3 convolution (padding 1)."""
    return nn.Sequential(
        nn.BatchNorm2d(input_channels), nn.ReLU(),
        nn.Conv2d(input_channels, num_channels, kernel_size=3, padding=1),
    )  # fmt: skip


class DenseBlock(nn.Module):
    """``num_convs`` conv_blocks; each one's output (``num_channels``, the growth rate)
    is concatenated onto its input, so the block adds ``num_convs * num_channels`` channels."""

    def __init__(self, num_convs: int, input_channels: int, num_channels: int):
        super().__init__()
        layer = []
        for i in range(num_convs):
            layer.append(conv_block(num_channels * i + input_channels, num_channels))
        self.net = nn.Sequential(*layer)

    def forward(self, X):
        for blk in self.net:
            Y = blk(X)
            X = cat((X, Y), dim=1)
        return X


def transition_block(input_channels: int, num_channels: int) -> nn.Sequential:
    """Keeps the model small between dense blocks: a 1x1 convolution cuts the channels
    (to half, in densenet) and a 2x2 stride-2 average pool halves height and width."""
    return nn.Sequential(
        nn.BatchNorm2d(input_channels), nn.ReLU(),
        nn.Conv2d(input_channels, num_channels, kernel_size=1),
        nn.AvgPool2d(kernel_size=2, stride=2),
    )  # fmt: skip


def densenet(num_classes: int = 10, in_channels: int = 1) -> Network:
    """ResNet's b1, four dense blocks of four conv_blocks (growth rate 32) with a
    transition block halving the channels after each but the last
    (64 -> 192 -> 96 -> 224 -> 112 -> 240 -> 120 -> 248), then batch norm, ReLU,
    global average pooling and one Linear layer."""
    b1 = nn.Sequential(
        nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3),
        nn.BatchNorm2d(64), nn.ReLU(),
        nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
    )  # fmt: skip
    num_channels, growth_rate = 64, 32
    num_convs_in_dense_blocks = [4, 4, 4, 4]
    blks = []
    for i, num_convs in enumerate(num_convs_in_dense_blocks):
        blks.append(DenseBlock(num_convs, num_channels, growth_rate))
        num_channels += num_convs * growth_rate
        if i != len(num_convs_in_dense_blocks) - 1:
            blks.append(transition_block(num_channels, num_channels // 2))
            num_channels = num_channels // 2
    return Network(
        b1, *blks,
        nn.BatchNorm2d(num_channels), nn.ReLU(),
        nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(),
        nn.Linear(num_channels, num_classes),
        name="densenet", resolution=96, min_size=29,
        in_channels=in_channels, num_classes=num_classes,
    )  # fmt: skip
