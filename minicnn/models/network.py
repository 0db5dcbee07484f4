"""What every network of the chapter shares: a :class:`~minicnn.nn.Sequential` that
knows its name and the input it was built for, and says so when it gets another."""

from __future__ import annotations

from ..nn import Sequential


class Network(Sequential):
    """The book's ``nn.Sequential`` net, plus what a reader (and ``forward``) needs to know.

    - ``name``: the registry name (``'resnet18'``);
    - ``in_channels``, ``num_classes``: 1 and 10 for Fashion-MNIST;
    - ``resolution``: the input size the book trains at (28, 224 or 96);
    - ``min_size``: the smallest square input every layer accepts (found by experiment);
    - ``max_size``: the largest, for networks whose first Linear layer fixes the size
      (LeNet, AlexNet, VGG); ``None`` when global average pooling accepts anything larger.

    Batch norm adds one rule in training: more than one value per channel. A batch of
    two is always enough; a single image needs larger maps (33x33 for resnet18).

    ``forward`` checks the input first, so a wrong shape is one clear error naming the
    network instead of a failure deep inside.
    """

    def __init__(
        self, *blocks, name, resolution, min_size, max_size=None, in_channels=1, num_classes=10
    ):
        super().__init__(*blocks)
        self.name, self.resolution = name, resolution
        self.min_size, self.max_size = min_size, max_size
        self.in_channels, self.num_classes = in_channels, num_classes

    def forward(self, x):
        self.check_input(x)
        return super().forward(x)

    def check_input(self, x) -> None:
        """Raise a ValueError unless ``x`` is (N, in_channels, H, W) with H and W in range."""
        shape = tuple(x.shape)
        if len(shape) != 4:
            problem = "is not 4-D"
        elif shape[1] != self.in_channels:
            problem = f"has {shape[1]} channels, not {self.in_channels}"
        elif min(shape[2:]) < self.min_size:
            problem = "is too small"
        elif self.max_size is not None and max(shape[2:]) > self.max_size:
            problem = "is too large"
        else:
            return
        raise ValueError(f"{self.name}: input of shape {shape} {problem}: {self.expects()}")

    def expects(self) -> str:
        """The input this network accepts, in words."""
        size = f"at least {self.min_size}x{self.min_size}"
        if self.max_size is not None:
            size = f"between {self.min_size}x{self.min_size} and {self.max_size}x{self.max_size}"
        return (
            f"this network needs (N, {self.in_channels}, H, W) with H x W {size} "
            f"(the book uses {self.resolution}x{self.resolution})"
        )

    def extra_repr(self) -> str:
        return f"{self.name}"
