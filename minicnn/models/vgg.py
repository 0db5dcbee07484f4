"""VGG (D2L 8.2 "Networks Using Blocks (VGG)"): networks built from repeated blocks."""

from __future__ import annotations

from .. import nn
from .network import Network

#: VGG-11: (number of convolutions, output channels) for each of the five blocks
conv_arch = ((1, 64), (1, 128), (2, 256), (2, 512), (2, 512))


def vgg_block(num_convs: int, in_channels: int, out_channels: int) -> nn.Sequential:
    """``num_convs`` 3x3 convolutions (padding 1 keeps the size), each followed by
    ReLU, then a 2x2 stride-2 max-pool that halves height and width."""
    layers = []
    for _ in range(num_convs):
        layers.append(nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1))
        layers.append(nn.ReLU())
        in_channels = out_channels
    layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
    return nn.Sequential(*layers)


def vgg(conv_arch, num_classes: int = 10, in_channels: int = 1, name: str = "vgg") -> Network:
    """One vgg_block per ``(num_convs, out_channels)`` of ``conv_arch``, then AlexNet's
    head. Five blocks halve 224 five times, so the head sees 7x7 maps; so does any
    size from 7 * 32 = 224 to 8 * 32 - 1 = 255."""
    conv_blks, channels = [], in_channels
    for num_convs, out_channels in conv_arch:
        conv_blks.append(vgg_block(num_convs, channels, out_channels))
        channels = out_channels
    return Network(
        *conv_blks, nn.Flatten(),
        nn.Linear(out_channels * 7 * 7, 4096), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(4096, num_classes),
        name=name, resolution=224,
        min_size=7 * 2 ** len(conv_arch), max_size=8 * 2 ** len(conv_arch) - 1,
        in_channels=in_channels, num_classes=num_classes,
    )  # fmt: skip


def vgg11(ratio: int = 4, num_classes: int = 10, in_channels: int = 1) -> Network:
    """VGG-11 with every block's width divided by ``ratio`` (the book trains ratio 4,
    channels 16-32-64-128-128; ``ratio=1`` is the full 64-128-256-512-512 network)."""
    small_conv_arch = [(num_convs, channels // ratio) for num_convs, channels in conv_arch]
    return vgg(small_conv_arch, num_classes, in_channels, name="vgg11")
