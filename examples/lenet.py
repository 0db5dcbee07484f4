"""D2L 7.6 Convolutional Neural Networks (LeNet): LeNet-5, layer by layer.

    python examples/lenet.py
    python examples/lenet.py --train     # the book's recipe: lr 0.9, batch 256, 10 epochs

Builds LeNet as the book does, prints each layer's output shape for one 28x28 image,
then mc.summary's table (with each layer's algorithm and receptive field); --train then
trains it with the book's recipe (--epochs, --limit for a shorter run).
"""

from _network_example import main, parse_arguments

from minicnn import nn

# Two convolution blocks (5x5 conv, sigmoid, 2x2 average pool), then three fully
# connected layers. The first conv pads by 2, so that 28x28 images work like LeNet's 32x32.
net = nn.Sequential(
    nn.Conv2d(1, 6, kernel_size=5, padding=2), nn.Sigmoid(),
    nn.AvgPool2d(kernel_size=2, stride=2),
    nn.Conv2d(6, 16, kernel_size=5), nn.Sigmoid(),
    nn.AvgPool2d(kernel_size=2, stride=2),
    nn.Flatten(),
    nn.Linear(16 * 5 * 5, 120), nn.Sigmoid(),
    nn.Linear(120, 84), nn.Sigmoid(),
    nn.Linear(84, 10),
)  # fmt: skip

if __name__ == "__main__":
    main("lenet", net, parse_arguments(__doc__))
