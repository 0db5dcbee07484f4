# %% [markdown]
# # 8.5 Batch Normalization
#
# *Dive into Deep Learning*, section 8.5, with minicnn in place of PyTorch: batch
# normalization from scratch, out of Tensor operations whose gradient autograd finds,
# a layer around it, LeNet with it, and then the framework's layer.
#
# This page is `examples/batch_norm.py`, run as a script (`python examples/batch_norm.py`;
# `--train` trains) or as the notebook `notebooks/8.5_batch_norm.ipynb`, which trains.
#
# The book's conventions differ from the framework layer's (`nn.BatchNorm2d`): the
# moving averages keep `momentum = 0.9` of their *old* value (PyTorch's momentum 0.1
# weighs the *new* batch), and the moving variance tracks the biased batch variance
# (PyTorch's tracks the unbiased one, times m / (m - 1)).

# %%
import numpy as np

import minicnn as mc
from minicnn import nn

page = mc.book.Page("D2L 8.5 Batch Normalization", model="lenet_bn",
                    options={"--seed": dict(type=int, default=0)})  # fmt: skip
mc.manual_seed(page.args.seed)

# %% [markdown]
# The backend: `numba` (compiled kernels on the CPU) by default, `cupy` where a GPU
# works, `numpy` for the textbook path, to step through (`page.choose_backend("numpy")`).

# %%
backend = page.choose_backend()

# %% [markdown]
# ## Implementation from scratch
#
# In training (gradients on), normalise with the batch's statistics and update the
# moving ones; in prediction (under `mc.no_grad()`), normalise with the moving ones:
#
#     mean = X.mean(axes)    var = ((X - mean) ** 2).mean(axes)      # biased
#     Y = gamma * (X - mean) / sqrt(var + eps) + beta
#     moving = momentum * moving + (1 - momentum) * batch statistic
#
# `axes` is the batch for a fully connected layer's (N, C) output, and (N, H, W) for a
# convolution's (N, C, H, W): one mean and variance per channel.


# %%
def batch_norm(X, gamma, beta, moving_mean, moving_var, eps, momentum):
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


# %% [markdown]
# The layer keeps the learned scale and shift, `gamma` and `beta`, as parameters, and
# the moving statistics as buffers (so that `.to()`, `.double()` and `state_dict()`
# carry them too; the book keeps them as plain tensors).


# %%
class BatchNorm(nn.Module):
    def __init__(self, num_features, num_dims):
        super().__init__()
        shape = (1, num_features) if num_dims == 2 else (1, num_features, 1, 1)
        # The scale and shift are learned, starting at 1 and 0
        self.gamma = nn.Parameter(np.ones(shape, dtype=np.float32))
        self.beta = nn.Parameter(np.zeros(shape, dtype=np.float32))
        self.register_buffer("moving_mean", np.zeros(shape, dtype=np.float32))
        self.register_buffer("moving_var", np.ones(shape, dtype=np.float32))

    def forward(self, X):
        Y, self.moving_mean, self.moving_var = batch_norm(
            X, self.gamma, self.beta, self.moving_mean, self.moving_var, eps=1e-5, momentum=0.9
        )
        return Y


# %% [markdown]
# ## LeNet with batch normalization
#
# Batch norm after every convolution and hidden fully connected layer, before the
# sigmoid. The first convolution has no padding here, as in the book's version.


# %%
def lenet_scratch_bn():
    return nn.Sequential(
        nn.Conv2d(1, 6, kernel_size=5), BatchNorm(6, num_dims=4), nn.Sigmoid(),
        nn.AvgPool2d(kernel_size=2, stride=2),
        nn.Conv2d(6, 16, kernel_size=5), BatchNorm(16, num_dims=4), nn.Sigmoid(),
        nn.AvgPool2d(kernel_size=2, stride=2), nn.Flatten(),
        nn.Linear(16 * 4 * 4, 120), BatchNorm(120, num_dims=2), nn.Sigmoid(),
        nn.Linear(120, 84), BatchNorm(84, num_dims=2), nn.Sigmoid(),
        nn.Linear(84, 10),
    )  # fmt: skip


net = lenet_scratch_bn()

# %% [markdown]
# A batch of 16 random images through it in training mode, layer by layer, then one SGD
# step: autograd reaches `gamma` and `beta` through `batch_norm`'s operations, and the
# moving mean moves a tenth of the way towards the batch's.

# %%
rng = np.random.default_rng(page.args.seed)
X = rng.random((16, 1, 28, 28), dtype=np.float32)
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

# %% [markdown]
# ## Training
#
# The book's recipe: learning rate 1.0, batch 256, 10 epochs. Here two epochs, about a
# quarter of a minute on 2 cores (`minicnn train lenet_bn` trains the framework layer's
# network with the full recipe). The run goes to `runs/lenet_bn_scratch/`; running the
# cell again replaces it (in a notebook `page.train` passes `overwrite=True`).

# %%
net = lenet_scratch_bn()
run = page.train(net, lr=1.0, batch_size=256, num_epochs=2, out="runs/lenet_bn_scratch")

# %% [markdown]
# The scale `gamma` and shift `beta` the first batch-norm layer learned, one per channel.

# %%
if run:  # trained above: not when the data is missing, nor as a script without --train
    print("gamma", net[1].gamma.numpy().reshape(-1))
    print("beta ", net[1].beta.numpy().reshape(-1))

# %% [markdown]
# ## Concise implementation
#
# The framework's `nn.BatchNorm2d` and `nn.BatchNorm1d` compute the same normalisation
# in one Function each, with its backward written out (`minicnn/functional/norm.py`),
# and PyTorch's conventions for the moving statistics. The same two epochs, into
# `runs/lenet_bn/`.

# %%
net = nn.Sequential(
    nn.Conv2d(1, 6, kernel_size=5), nn.BatchNorm2d(6), nn.Sigmoid(),
    nn.AvgPool2d(kernel_size=2, stride=2),
    nn.Conv2d(6, 16, kernel_size=5), nn.BatchNorm2d(16), nn.Sigmoid(),
    nn.AvgPool2d(kernel_size=2, stride=2), nn.Flatten(),
    nn.Linear(256, 120), nn.BatchNorm1d(120), nn.Sigmoid(),
    nn.Linear(120, 84), nn.BatchNorm1d(84), nn.Sigmoid(),
    nn.Linear(84, 10),
)  # fmt: skip
run = page.train(net, lr=1.0, batch_size=256, num_epochs=2)
