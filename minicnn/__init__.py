"""minicnn: a from-scratch deep-learning engine for the CNN chapters of Dive into Deep Learning.

>>> import minicnn as mc
>>> x = mc.tensor([[1.0, 2.0]], requires_grad=True)
>>> (x * x).sum().backward()
>>> x.grad
tensor([[2. 4.]], dtype=float64)
"""

from . import book, config, data, functional, models, nn, optim, train, viz
from .backend import (
    available_backends,
    current_backend,
    get_backend,
    manual_seed,
    use_backend,
)
from .summary import summary
from .tensor import Function, Tensor, as_tensor, is_grad_enabled, no_grad, tensor
from .threads import get_num_threads, set_num_threads

__version__ = "0.1.0"

__all__ = [
    "Function",
    "Tensor",
    "as_tensor",
    "available_backends",
    "book",
    "config",
    "current_backend",
    "data",
    "functional",
    "get_backend",
    "get_num_threads",
    "is_grad_enabled",
    "manual_seed",
    "models",
    "nn",
    "optim",
    "no_grad",
    "set_num_threads",
    "summary",
    "tensor",
    "train",
    "use_backend",
    "viz",
]
