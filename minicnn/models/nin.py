"""Network in Network (D2L 8.3 "Network in Network (NiN)"): no fully connected layers;
1x1 convolutions act as a per-pixel MLP, and global average pooling gives the logits."""

from __future__ import annotations

from .. import nn
from .network import Network


def nin_block(in_channels: int, out_channels: int, kernel_size, strides, padding) -> nn.Sequential:
    """One ordinary convolution, then two 1x1 convolutions: each pixel's channel vector
    goes through a small fully connected network (ReLU after each of the three)."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, strides, padding), nn.ReLU(),
        nn.Conv2d(out_channels, out_channels, kernel_size=1), nn.ReLU(),
        nn.Conv2d(out_channels, out_channels, kernel_size=1), nn.ReLU(),
    )  # fmt: skip


def nin(num_classes: int = 10, in_channels: int = 1) -> Network:
    """AlexNet's window sizes and channels as NiN blocks; the last block has one channel
    per class and global average pooling turns each channel into a logit."""
    return Network(
        nin_block(in_channels, 96, kernel_size=11, strides=4, padding=0),
        nn.MaxPool2d(3, stride=2),
        nin_block(96, 256, kernel_size=5, strides=1, padding=2),
        nn.MaxPool2d(3, stride=2),
        nin_block(256, 384, kernel_size=3, strides=1, padding=1),
        nn.MaxPool2d(3, stride=2),
        nn.Dropout(0.5),
        nin_block(384, num_classes, kernel_size=3, strides=1, padding=1),
        nn.AdaptiveAvgPool2d((1, 1)),
        nn.Flatten(),
        name="nin", resolution=224, min_size=67,
        in_channels=in_channels, num_classes=num_classes,
    )  # fmt: skip
