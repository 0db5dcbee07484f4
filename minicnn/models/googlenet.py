"""GoogLeNet (D2L 8.4 "Multi-Branch Networks (GoogLeNet)"): Inception blocks, which run
four paths side by side and concatenate their outputs on the channel axis."""

from __future__ import annotations

from .. import nn
from ..functional import cat, relu
from .network import Network


class Inception(nn.Module):
    """Four parallel paths over the same input, each keeping height and width:

    1. a 1x1 conv (``c1`` channels);
    2. a 1x1 conv to ``c2[0]`` channels, then a 3x3 conv (padding 1) to ``c2[1]``;
    3. a 1x1 conv to ``c3[0]`` channels, then a 5x5 conv (padding 2) to ``c3[1]``;
    4. a 3x3 max-pool (stride 1, padding 1), then a 1x1 conv to ``c4``.

    The output has ``c1 + c2[1] + c3[1] + c4`` channels.
    """

    def __init__(self, in_channels: int, c1: int, c2, c3, c4: int):
        super().__init__()
        self.p1_1 = nn.Conv2d(in_channels, c1, kernel_size=1)
        self.p2_1 = nn.Conv2d(in_channels, c2[0], kernel_size=1)
        self.p2_2 = nn.Conv2d(c2[0], c2[1], kernel_size=3, padding=1)
        self.p3_1 = nn.Conv2d(in_channels, c3[0], kernel_size=1)
        self.p3_2 = nn.Conv2d(c3[0], c3[1], kernel_size=5, padding=2)
        self.p4_1 = nn.MaxPool2d(kernel_size=3, stride=1, padding=1)
        self.p4_2 = nn.Conv2d(in_channels, c4, kernel_size=1)

    def forward(self, x):
        p1 = relu(self.p1_1(x))
        p2 = relu(self.p2_2(relu(self.p2_1(x))))
        p3 = relu(self.p3_2(relu(self.p3_1(x))))
        p4 = relu(self.p4_2(self.p4_1(x)))
        return cat((p1, p2, p3, p4), dim=1)


def googlenet(num_classes: int = 10, in_channels: int = 1) -> Network:
    """Five stages b1..b5 (each but the last ends by halving height and width with a
    3x3 stride-2 max-pool), nine Inception blocks in all, global average pooling to
    1024 features and one Linear layer."""
    b1 = nn.Sequential(
        nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3), nn.ReLU(),
        nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
    )  # fmt: skip
    b2 = nn.Sequential(
        nn.Conv2d(64, 64, kernel_size=1), nn.ReLU(),
        nn.Conv2d(64, 192, kernel_size=3, padding=1), nn.ReLU(),
        nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
    )  # fmt: skip
    b3 = nn.Sequential(
        Inception(192, 64, (96, 128), (16, 32), 32),
        Inception(256, 128, (128, 192), (32, 96), 64),
        nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
    )
    b4 = nn.Sequential(
        Inception(480, 192, (96, 208), (16, 48), 64),
        Inception(512, 160, (112, 224), (24, 64), 64),
        Inception(512, 128, (128, 256), (24, 64), 64),
        Inception(512, 112, (144, 288), (32, 64), 64),
        Inception(528, 256, (160, 320), (32, 128), 128),
        nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
    )
    b5 = nn.Sequential(
        Inception(832, 256, (160, 320), (32, 128), 128),
        Inception(832, 384, (192, 384), (48, 128), 128),
        nn.AdaptiveAvgPool2d((1, 1)),
        nn.Flatten(),
    )
    return Network(
        b1, b2, b3, b4, b5, nn.Linear(1024, num_classes),
        name="googlenet", resolution=96, min_size=1,
        in_channels=in_channels, num_classes=num_classes,
    )  # fmt: skip
