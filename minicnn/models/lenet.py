"""LeNet (D2L 7.6 "Convolutional Neural Networks (LeNet)") and LeNet with batch
normalization (D2L 8.5 "Batch Normalization", the concise version)."""

from __future__ import annotations

from .. import nn
from .network import Network


def lenet(num_classes: int = 10, in_channels: int = 1) -> Network:
    """LeNet-5 on 28x28 images: two conv + sigmoid + average-pool stages, then three
    fully connected layers. The first conv pads by 2 so that 28x28 works like LeNet's 32x32:
    6x28x28 -> 6x14x14 -> 16x10x10 -> 16x5x5 -> 400 -> 120 -> 84 -> 10."""
    return Network(
        nn.Conv2d(in_channels, 6, kernel_size=5, padding=2), nn.Sigmoid(),
        nn.AvgPool2d(kernel_size=2, stride=2),
        nn.Conv2d(6, 16, kernel_size=5), nn.Sigmoid(),
        nn.AvgPool2d(kernel_size=2, stride=2),
        nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120), nn.Sigmoid(),
        nn.Linear(120, 84), nn.Sigmoid(),
        nn.Linear(84, num_classes),
        name="lenet", resolution=28, min_size=28, max_size=31,
        in_channels=in_channels, num_classes=num_classes,
    )  # fmt: skip


def lenet_bn(num_classes: int = 10, in_channels: int = 1) -> Network:
    """LeNet with a batch-norm layer after every conv and Linear layer but the last,
    before the sigmoid. The first conv has no padding here (as in the book), so the
    flattened features are 16x4x4 = 256."""
    return Network(
        nn.Conv2d(in_channels, 6, kernel_size=5), nn.BatchNorm2d(6), nn.Sigmoid(),
        nn.AvgPool2d(kernel_size=2, stride=2),
        nn.Conv2d(6, 16, kernel_size=5), nn.BatchNorm2d(16), nn.Sigmoid(),
        nn.AvgPool2d(kernel_size=2, stride=2),
        nn.Flatten(),
        nn.Linear(256, 120), nn.BatchNorm1d(120), nn.Sigmoid(),
        nn.Linear(120, 84), nn.BatchNorm1d(84), nn.Sigmoid(),
        nn.Linear(84, num_classes),
        name="lenet_bn", resolution=28, min_size=28, max_size=31,
        in_channels=in_channels, num_classes=num_classes,
    )  # fmt: skip
