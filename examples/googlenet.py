"""D2L 8.4 Multi-Branch Networks (GoogLeNet), stage by stage.

    python examples/googlenet.py             # 96x96, the size the book trains at
    python examples/googlenet.py --train     # the book's recipe: lr 0.1, batch 128, 96 px

Builds GoogLeNet from Inception blocks as the book does, prints each stage's output
shape, then mc.summary's table; --train then trains it with the book's recipe
(--epochs, --limit for a shorter run).
"""

from _network_example import main, parse_arguments

from minicnn import nn
from minicnn.nn import functional as F


class Inception(nn.Module):
    """Four paths over the same input, concatenated on the channel axis:
    c1 channels of a 1x1 conv; c2 a 1x1 then a 3x3 conv; c3 a 1x1 then a 5x5 conv;
    c4 a 3x3 max pool then a 1x1 conv. Each path keeps height and width."""

    def __init__(self, in_channels, c1, c2, c3, c4):
        super().__init__()
        # Path 1: a single 1x1 convolutional layer
        self.p1_1 = nn.Conv2d(in_channels, c1, kernel_size=1)
        # Path 2: a 1x1 convolutional layer followed by a 3x3 convolutional layer
        self.p2_1 = nn.Conv2d(in_channels, c2[0], kernel_size=1)
        self.p2_2 = nn.Conv2d(c2[0], c2[1], kernel_size=3, padding=1)
        # Path 3: a 1x1 convolutional layer followed by a 5x5 convolutional layer
        self.p3_1 = nn.Conv2d(in_channels, c3[0], kernel_size=1)
        self.p3_2 = nn.Conv2d(c3[0], c3[1], kernel_size=5, padding=2)
        # Path 4: a 3x3 max pooling layer followed by a 1x1 convolutional layer
        self.p4_1 = nn.MaxPool2d(kernel_size=3, stride=1, padding=1)
        self.p4_2 = nn.Conv2d(in_channels, c4, kernel_size=1)

    def forward(self, x):
        p1 = F.relu(self.p1_1(x))
        p2 = F.relu(self.p2_2(F.relu(self.p2_1(x))))
        p3 = F.relu(self.p3_2(F.relu(self.p3_1(x))))
        p4 = F.relu(self.p4_2(self.p4_1(x)))
        # Concatenate the outputs on the channel dimension
        return F.cat((p1, p2, p3, p4), dim=1)


b1 = nn.Sequential(
    nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3), nn.ReLU(),
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
net = nn.Sequential(b1, b2, b3, b4, b5, nn.Linear(1024, 10))

if __name__ == "__main__":
    main("googlenet", net, parse_arguments(__doc__))
