"""ResNet-18 (D2L 8.6 "Residual Networks (ResNet)"): blocks that learn a residual
``f(x) - x``, so that each block can fall back to the identity."""

from __future__ import annotations

from .. import nn
from ..functional import relu
from .network import Network


class Residual(nn.Module):
    """``Y = relu(bn2(conv2(relu(bn1(conv1(X))))) + X)``, two 3x3 convolutions.

    When the block changes the shape (``strides`` 2 halves height and width, or the
    channel count changes), ``use_1x1conv`` adds ``conv3``, a 1x1 convolution with the
    same stride that brings ``X`` to ``Y``'s shape before the addition.
    """

    def __init__(self, input_channels: int, num_channels: int, use_1x1conv=False, strides=1):
        super().__init__()
        self.conv1 = nn.Conv2d(
            input_channels, num_channels, kernel_size=3, padding=1, stride=strides
        )
        self.conv2 = nn.Conv2d(num_channels, num_channels, kernel_size=3, padding=1)
        if use_1x1conv:
            self.conv3 = nn.Conv2d(input_channels, num_channels, kernel_size=1, stride=strides)
        else:
            self.conv3 = None
        self.bn1 = nn.BatchNorm2d(num_channels)
        self.bn2 = nn.BatchNorm2d(num_channels)

    def forward(self, X):
        Y = relu(self.bn1(self.conv1(X)))
        Y = self.bn2(self.conv2(Y))
        if self.conv3 is not None:
            X = self.conv3(X)
        return relu(Y + X)


def resnet_block(
    input_channels: int, num_channels: int, num_residuals: int, first_block=False
) -> list:
    """A list of ``num_residuals`` Residual blocks; the first halves height and width and
    changes the channels, except in the first stage (after b1's max-pool already halved)."""
    blk = []
    for i in range(num_residuals):
        if i == 0 and not first_block:
            blk.append(Residual(input_channels, num_channels, use_1x1conv=True, strides=2))
        else:
            blk.append(Residual(num_channels, num_channels))
    return blk


def resnet18(num_classes: int = 10, in_channels: int = 1) -> Network:
    """GoogLeNet's first stage with batch norm (b1), four stages of two Residual blocks
    (64, 128, 256, 512 channels), global average pooling and one Linear layer: 1 + 4*2*2
    convolutions + 1 Linear = 18 layers."""
    b1 = nn.Sequential(
        nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3),
        nn.BatchNorm2d(64), nn.ReLU(),
        nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
    )  # fmt: skip
    b2 = nn.Sequential(*resnet_block(64, 64, 2, first_block=True))
    b3 = nn.Sequential(*resnet_block(64, 128, 2))
    b4 = nn.Sequential(*resnet_block(128, 256, 2))
    b5 = nn.Sequential(*resnet_block(256, 512, 2))
    return Network(
        b1, b2, b3, b4, b5,
        nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.Linear(512, num_classes),
        name="resnet18", resolution=96, min_size=1,
        in_channels=in_channels, num_classes=num_classes,
    )  # fmt: skip
