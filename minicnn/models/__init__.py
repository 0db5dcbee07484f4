"""``minicnn.models``: the networks of the CNN chapters, built as in the book's PyTorch
code (same nesting, so ``state_dict()`` keys equal PyTorch's), and a registry by name::

    net = mc.models.get("resnet18")      # mc.models.names() lists them

Section numbers are d2l-en 1.0's (chapters 7 and 8); the code follows the PyTorch
edition of d2l-zh 2.0 / d2l-en 0.17 (chapters 6 and 7 there), whose nesting is kept.
"""

from __future__ import annotations

from .alexnet import alexnet
from .densenet import DenseBlock, conv_block, densenet, transition_block
from .googlenet import Inception, googlenet
from .lenet import lenet, lenet_bn
from .network import Network
from .nin import nin, nin_block
from .resnet import Residual, resnet18, resnet_block
from .vgg import vgg, vgg11, vgg_block

_FACTORIES = {
    "lenet": lenet,
    "lenet_bn": lenet_bn,
    "alexnet": alexnet,
    "vgg11": vgg11,
    "nin": nin,
    "googlenet": googlenet,
    "resnet18": resnet18,
    "densenet": densenet,
}


def names() -> list[str]:
    """The registered networks, in the chapter's order."""
    return list(_FACTORIES)


def get(name: str, **kwargs) -> Network:
    """Build network ``name`` (``'lenet'`` ... ``'densenet'``); ``kwargs`` go to its
    factory, e.g. ``get("vgg11", ratio=1)`` or ``get("resnet18", num_classes=100)``."""
    if name not in _FACTORIES:
        raise ValueError(f"unknown network {name!r}; choose one of: {', '.join(names())}")
    return _FACTORIES[name](**kwargs)


__all__ = [
    "DenseBlock",
    "Inception",
    "Network",
    "Residual",
    "alexnet",
    "conv_block",
    "densenet",
    "get",
    "googlenet",
    "lenet",
    "lenet_bn",
    "names",
    "nin",
    "nin_block",
    "resnet18",
    "resnet_block",
    "transition_block",
    "vgg",
    "vgg11",
    "vgg_block",
]
