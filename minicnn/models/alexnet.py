"""AlexNet (D2L 8.1 "Deep Convolutional Neural Networks (AlexNet)"), for 1-channel
224x224 images: five convolutions, three max-pools, two wide dropout Linear layers."""

from __future__ import annotations

from .. import nn
from .network import Network


def alexnet(num_classes: int = 10, in_channels: int = 1) -> Network:
    """A large 11x11 stride-4 window first to shrink the image fast, then 5x5 and
    3x3 convolutions, overlapping 3x3 stride-2 max-pools, ReLU everywhere, and dropout
    in the 4096-wide fully connected layers. 224x224 reaches the head as 256x5x5 = 6400."""
    return Network(
        nn.Conv2d(in_channels, 96, kernel_size=11, stride=4, padding=1), nn.ReLU(),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(96, 256, kernel_size=5, padding=2), nn.ReLU(),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(256, 384, kernel_size=3, padding=1), nn.ReLU(),
        nn.Conv2d(384, 384, kernel_size=3, padding=1), nn.ReLU(),
        nn.Conv2d(384, 256, kernel_size=3, padding=1), nn.ReLU(),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Flatten(),
        nn.Linear(6400, 4096), nn.ReLU(), nn.Dropout(p=0.5),
        nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(p=0.5),
        nn.Linear(4096, num_classes),
        name="alexnet", resolution=224, min_size=193, max_size=224,
        in_channels=in_channels, num_classes=num_classes,
    )  # fmt: skip
