"""D2L 8.1 Deep Convolutional Neural Networks (AlexNet), layer by layer.

    python examples/alexnet.py           # 224x224, the book's walk-through
    python examples/alexnet.py --train   # the book's recipe: lr 0.01, batch 128, 224 px

Builds AlexNet as the book does (for 1-channel Fashion-MNIST), prints each layer's
output shape, then mc.summary's table; --train then trains it with the book's recipe
(--epochs, --limit for a shorter run).
"""

from _network_example import main, parse_arguments

from minicnn import nn

net = nn.Sequential(
    # A large 11x11 window with stride 4 to capture objects, and more output channels
    # than LeNet's; then overlapping 3x3 stride-2 max pooling
    nn.Conv2d(1, 96, kernel_size=11, stride=4, padding=1), nn.ReLU(),
    nn.MaxPool2d(kernel_size=3, stride=2),
    # A smaller window, padding 2 keeps height and width; more output channels
    nn.Conv2d(96, 256, kernel_size=5, padding=2), nn.ReLU(),
    nn.MaxPool2d(kernel_size=3, stride=2),
    # Three successive 3x3 convolutions, more channels still; pooling only after the last
    nn.Conv2d(256, 384, kernel_size=3, padding=1), nn.ReLU(),
    nn.Conv2d(384, 384, kernel_size=3, padding=1), nn.ReLU(),
    nn.Conv2d(384, 256, kernel_size=3, padding=1), nn.ReLU(),
    nn.MaxPool2d(kernel_size=3, stride=2),
    nn.Flatten(),
    # Fully connected layers many times wider than LeNet's, with dropout against overfitting
    nn.Linear(6400, 4096), nn.ReLU(), nn.Dropout(p=0.5),
    nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(p=0.5),
    # The output layer: 10 classes for Fashion-MNIST, not ImageNet's 1000
    nn.Linear(4096, 10),
)  # fmt: skip

if __name__ == "__main__":
    main("alexnet", net, parse_arguments(__doc__))
