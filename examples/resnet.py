"""D2L 8.6 Residual Networks (ResNet): ResNet-18, stage by stage.

    python examples/resnet.py             # 96x96, the size the book trains at
    python examples/resnet.py --size 224  # the book's walk-through: 64x56x56 ... 512x7x7

Builds ResNet-18 from Residual blocks as the book does, prints each stage's output
shape, then mc.summary's table; --train then trains it with the book's recipe
(--epochs, --limit for a shorter run).
"""

from _network_example import main, parse_arguments

from minicnn import nn
from minicnn.nn import functional as F


class Residual(nn.Module):
    """Two 3x3 convolutions with batch norm; the input is added back before the last
    ReLU. use_1x1conv brings the input to the output's shape when the block changes it."""

    def __init__(self, input_channels, num_channels, use_1x1conv=False, strides=1):
        super().__init__()
        self.conv1 = nn.Conv2d(input_channels, num_channels, kernel_size=3, padding=1,
                               stride=strides)  # fmt: skip
        self.conv2 = nn.Conv2d(num_channels, num_channels, kernel_size=3, padding=1)
        if use_1x1conv:
            self.conv3 = nn.Conv2d(input_channels, num_channels, kernel_size=1, stride=strides)
        else:
            self.conv3 = None
        self.bn1 = nn.BatchNorm2d(num_channels)
        self.bn2 = nn.BatchNorm2d(num_channels)

    def forward(self, X):
        Y = F.relu(self.bn1(self.conv1(X)))
        Y = self.bn2(self.conv2(Y))
        if self.conv3:
            X = self.conv3(X)
        Y += X
        return F.relu(Y)


def resnet_block(input_channels, num_channels, num_residuals, first_block=False):
    """num_residuals Residual blocks; the first of each stage after the first halves
    height and width and changes the channels."""
    blk = []
    for i in range(num_residuals):
        if i == 0 and not first_block:
            blk.append(Residual(input_channels, num_channels, use_1x1conv=True, strides=2))
        else:
            blk.append(Residual(num_channels, num_channels))
    return blk


b1 = nn.Sequential(
    nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3),
    nn.BatchNorm2d(64), nn.ReLU(),
    nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
)  # fmt: skip
b2 = nn.Sequential(*resnet_block(64, 64, 2, first_block=True))
b3 = nn.Sequential(*resnet_block(64, 128, 2))
b4 = nn.Sequential(*resnet_block(128, 256, 2))
b5 = nn.Sequential(*resnet_block(256, 512, 2))
net = nn.Sequential(b1, b2, b3, b4, b5,
                    nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.Linear(512, 10))  # fmt: skip

if __name__ == "__main__":
    main("resnet18", net, parse_arguments(__doc__))
