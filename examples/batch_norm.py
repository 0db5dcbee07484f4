"""D2L 8.5 Batch Normalization, from scratch: ``batch_norm`` out of Tensor operations
(autograd finds its gradient), a ``BatchNorm`` layer around it, and LeNet with it.

    python examples/batch_norm.py

The book's conventions, which differ from the framework layer's (``nn.BatchNorm2d``):
the moving averages keep ``momentum = 0.9`` of their OLD value (PyTorch's momentum 0.1
weighs the NEW batch), and the moving variance tracks the biased batch variance
(PyTorch's tracks the unbiased one, times m / (m - 1)).
"""

import argparse

import numpy as np

import minicnn as mc
from minicnn import nn


def batch_norm(X, gamma, beta, moving_mean, moving_var, eps, momentum):
    """Training (gradients on): normalise with the batch's statistics and update the
    moving ones; prediction (under ``mc.no_grad()``): normalise with the moving ones::

        mean = X.mean(axes)    var = ((X - mean) ** 2).mean(axes)      # biased
        Y = gamma * (X - mean) / sqrt(var + eps) + beta
        moving = momentum * moving + (1 - momentum) * batch statistic

    ``axes`` is the batch for a fully connected layer's (N, C) output and (N, H, W) for a
    convolution's (N, C, H, W): one mean and variance per channel.
    Returns ``Y`` and the new ``moving_mean`` and ``moving_var``.
    """
    # As the book: gradients switched on means training
    if not mc.is_grad_enabled():
        X_hat = (X - moving_mean) / (moving_var + eps) ** 0.5
    else:
        if X.ndim not in (2, 4):
            raise ValueError(
                f"batch_norm: expected a 2-D (N, C) or 4-D (N, C, H, W) input, got shape {X.shape}"
            )
        if X.ndim == 2:  # fully connected: statistics per feature, over the batch
            mean = X.mean(axis=0)
            var = ((X - mean) ** 2).mean(axis=0)
        else:  # convolution: per channel, over the batch and every pixel; keepdims to broadcast
            mean = X.mean(axis=(0, 2, 3), keepdims=True)
            var = ((X - mean) ** 2).mean(axis=(0, 2, 3), keepdims=True)
        X_hat = (X - mean) / (var + eps) ** 0.5
        # The moving statistics are not learned: cut them from the graph
        moving_mean = momentum * moving_mean + (1.0 - momentum) * mean.detach()
        moving_var = momentum * moving_var + (1.0 - momentum) * var.detach()
    Y = gamma * X_hat + beta  # scale and shift
    return Y, moving_mean, moving_var


class BatchNorm(nn.Module):
    """The book's layer: ``num_features`` outputs of a fully connected layer
    (``num_dims=2``) or channels of a convolution (``num_dims=4``)."""

    def __init__(self, num_features, num_dims):
        super().__init__()
        shape = (1, num_features) if num_dims == 2 else (1, num_features, 1, 1)
        # The scale and shift are learned, starting at 1 and 0
        self.gamma = nn.Parameter(np.ones(shape, dtype=np.float32))
        self.beta = nn.Parameter(np.zeros(shape, dtype=np.float32))
        # The moving statistics are not; the book keeps them as plain tensors, registering
        # them as buffers lets .to(), .double() and state_dict() carry them too
        self.register_buffer("moving_mean", np.zeros(shape, dtype=np.float32))
        self.register_buffer("moving_var", np.ones(shape, dtype=np.float32))

    def forward(self, X):
        Y, self.moving_mean, self.moving_var = batch_norm(
            X, self.gamma, self.beta, self.moving_mean, self.moving_var, eps=1e-5, momentum=0.9
        )
        return Y


def lenet_scratch_bn():
    """LeNet with the from-scratch BatchNorm after every convolution and hidden Linear."""
    return nn.Sequential(
        nn.Conv2d(1, 6, kernel_size=5), BatchNorm(6, num_dims=4), nn.Sigmoid(),
        nn.AvgPool2d(kernel_size=2, stride=2),
        nn.Conv2d(6, 16, kernel_size=5), BatchNorm(16, num_dims=4), nn.Sigmoid(),
        nn.AvgPool2d(kernel_size=2, stride=2), nn.Flatten(),
        nn.Linear(16 * 4 * 4, 120), BatchNorm(120, num_dims=2), nn.Sigmoid(),
        nn.Linear(120, 84), BatchNorm(84, num_dims=2), nn.Sigmoid(),
        nn.Linear(84, 10),
    )  # fmt: skip


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--train",
        action="store_true",
        help="then train this from-scratch LeNet-BN with the book's recipe",
    )
    parser.add_argument("--epochs", type=int, default=10, help="with --train")
    parser.add_argument("--limit", type=int, help="with --train: use only the first LIMIT images")
    args = parser.parse_args(argv)

    mc.manual_seed(args.seed)
    net = lenet_scratch_bn()
    rng = np.random.default_rng(args.seed)
    X = rng.random((16, 1, 28, 28), dtype=np.float32)  # a batch of random "images"
    y = rng.integers(0, 10, 16)
    for layer in net:
        X = layer(X)
        print(f"{type(layer).__name__:>10} output shape: {X.shape}")
    loss = nn.CrossEntropyLoss()(X, mc.tensor(y))
    loss.backward()
    mc.optim.SGD(net.parameters(), lr=1.0).step()  # the book's learning rate
    print(f"loss {loss.item():.4f}; after one SGD step the first BatchNorm has")
    print("gamma", net[1].gamma.numpy().reshape(-1))
    print("beta ", net[1].beta.numpy().reshape(-1))
    print("moving_mean", net[1].moving_mean.numpy().reshape(-1))
    if args.train:  # the framework layer's LeNet-BN: `minicnn train lenet_bn`
        recipe = mc.train.RECIPES["lenet_bn"]
        mc.manual_seed(args.seed)
        data = mc.data.load_fashion_mnist(recipe.batch_size, limit=args.limit, seed=args.seed)
        mc.train.fit(lenet_scratch_bn(), *data, args.epochs, recipe.lr, out="runs/lenet_bn_scratch")


if __name__ == "__main__":
    main()
