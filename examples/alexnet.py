# %% [markdown]
# # 8.1 Deep Convolutional Neural Networks (AlexNet)
#
# *Dive into Deep Learning*, section 8.1, with minicnn in place of PyTorch: AlexNet for
# the one channel of Fashion-MNIST, layer by layer, and a short training run.
#
# This page is `examples/alexnet.py`, run as a script (`python examples/alexnet.py`
# prints the walk-through and the table; `--train` trains) or as the notebook
# `notebooks/8.1_alexnet.ipynb`, which trains.

# %%
import minicnn as mc
from minicnn import nn

page = mc.book.Page("D2L 8.1 Deep Convolutional Neural Networks (AlexNet)", model="alexnet")
mc.manual_seed(0)

# %% [markdown]
# The backend: `numba` (compiled kernels on the CPU) by default, `cupy` where a GPU
# works, `numpy` for the textbook path, to step through (`page.choose_backend("numpy")`).

# %%
backend = page.choose_backend()

# %% [markdown]
# ## AlexNet
#
# Eight layers: five convolutions, the first with a large 11×11 window and stride 4,
# overlapping 3×3 max pools, ReLU throughout, and two wide fully connected layers with
# dropout.

# %%
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

# %% [markdown]
# One 224×224 image through it, layer by layer (the book's loop, `page.walk_through`),
# then `mc.summary`'s table.

# %%
page.walk_through(net)
print(mc.summary(net, (1, 1, page.size, page.size)))

# %% [markdown]
# ## Training
#
# The book's recipe, learning rate 0.01, batch 128, 10 epochs at 224×224, takes hours on
# 2 cores (`minicnn train alexnet` runs it). Here a short recipe of about a minute that
# leaves chance level: the first 2048 images at 193×193 (the smallest side AlexNet's
# first Linear layer takes), batch 32, one epoch, the book's learning rate.
#
# The run keeps its metrics, checkpoint and report in `runs/alexnet/`; running the cell
# again replaces that run (in a notebook `page.train` passes `overwrite=True`; a script
# asks for `--overwrite`).

# %%
run = page.train(net, lr=0.01, batch_size=32, num_epochs=1, resize=193, limit=2048)

# %% [markdown]
# Twelve test images, with their true and predicted labels.

# %%
if run:  # trained above: not when the data is missing, nor as a script without --train
    page.show(mc.viz.predictions(net, run.test_iter), "predictions")
