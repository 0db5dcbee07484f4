"""Operations that move values around without changing them: reshape, transpose,
flatten, indexing, concatenation and stacking. Their backward moves the gradient back."""

from __future__ import annotations

from ..backend import backend_of, get_array_module
from ..tensor import Function, Tensor, as_tensor


class Reshape(Function):
    def __init__(self, shape):
        self.shape = (shape,) if isinstance(shape, int) else tuple(shape)

    def forward(self, x):
        self.x_shape = x.shape
        try:
            return x.reshape(self.shape)
        except ValueError:
            raise ValueError(
                f"reshape: cannot reshape {tuple(x.shape)} ({x.size} elements) into {self.shape}"
            ) from None

    def backward(self, gy):
        return gy.reshape(self.x_shape)


class Transpose(Function):
    """Permute axes (reverse them when ``axes`` is None); backward applies the inverse."""

    def __init__(self, axes=None):
        self.axes = None if axes is None else (axes,) if isinstance(axes, int) else tuple(axes)

    def forward(self, x):
        if self.axes is not None and sorted(a % x.ndim for a in self.axes) != list(range(x.ndim)):
            raise ValueError(f"transpose: axes {self.axes} are not a permutation of {x.ndim} axes")
        return x.transpose(self.axes)

    def backward(self, gy):
        if self.axes is None:
            return gy.transpose()
        inverse = [0] * len(self.axes)
        for k, a in enumerate(self.axes):
            inverse[a % len(self.axes)] = k
        return gy.transpose(inverse)


class GetItem(Function):
    """``x[index]``; backward adds the gradient into the selected places (``xp.add.at``,
    so an index repeated twice receives twice)."""

    def __init__(self, index):
        self.index = index

    def forward(self, x):
        self.x_shape, self.x_dtype = x.shape, x.dtype
        return x[self.index]

    def backward(self, gy):
        xp = get_array_module(gy)
        gx = xp.zeros(self.x_shape, dtype=self.x_dtype)
        xp.add.at(gx, self.index, gy)  # CuPy >= 13 has ufunc.at too
        return gx


class Cat(Function):
    """Join tensors along ``axis``; backward cuts the gradient back into the pieces."""

    def __init__(self, axis=0):
        self.axis = axis

    def forward(self, *xs):
        first = xs[0]
        axis = self.axis % first.ndim if -first.ndim <= self.axis < first.ndim else None
        for k, x in enumerate(xs):
            if (
                axis is None
                or x.ndim != first.ndim
                or any(x.shape[d] != first.shape[d] for d in range(first.ndim) if d != axis)
            ):
                shapes = [tuple(x.shape) for x in xs]
                raise ValueError(
                    f"cat: along dim {self.axis}, tensor {k} has shape {tuple(x.shape)}; all "
                    f"shapes must agree except on that dim, got {shapes}"
                )
        self.axis = axis
        self.sizes = [x.shape[axis] for x in xs]
        backend = backend_of(first)
        shape = first.shape[:axis] + (sum(self.sizes),) + first.shape[axis + 1 :]
        out = backend.empty(shape, backend.xp.result_type(*xs))
        return backend.xp.concatenate(xs, axis=axis, out=out)

    def backward(self, gy):
        pieces, start = [], 0
        for size in self.sizes:
            index = [slice(None)] * gy.ndim
            index[self.axis] = slice(start, start + size)
            pieces.append(gy[tuple(index)])
            start += size
        return tuple(pieces)


def reshape(x, shape):
    return Reshape(shape)(x)


def transpose(x, axes=None):
    return Transpose(axes)(x)


def flatten(x, start_dim=0, end_dim=-1):
    """Merge axes ``start_dim`` .. ``end_dim`` into one, as ``torch.flatten``."""
    shape = x.shape
    start, end = start_dim % len(shape), end_dim % len(shape)
    merged = 1
    for n in shape[start : end + 1]:
        merged *= n
    return reshape(x, shape[:start] + (merged,) + shape[end + 1 :])


def getitem(x, index):
    """``x[index]``; an index may hold Tensors (``y_hat[range(n), y]``), used as arrays."""
    if isinstance(index, tuple):
        index = tuple(_index_part(i) for i in index)
    else:
        index = _index_part(index)
    return GetItem(index)(x)


def _index_part(part):
    """A Tensor as its array; a range as a list (CuPy takes lists but not ranges)."""
    if isinstance(part, Tensor):
        return part.data
    return list(part) if isinstance(part, range) else part


def cat(tensors, dim=0):
    """Concatenate a sequence of tensors along ``dim``, as ``torch.cat``."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("cat: expected a non-empty sequence of tensors")
    return Cat(dim)(*tensors)


def stack(tensors, dim=0):
    """Join tensors of one shape along a new axis ``dim``, as ``torch.stack``: each gets an
    axis of size 1 there, then :func:`cat` joins them (so backward is cat's)."""
    tensors = [as_tensor(t) for t in tensors]
    if not tensors:
        raise ValueError("stack: expected a non-empty sequence of tensors")
    shape = tensors[0].shape
    for k, t in enumerate(tensors):
        if t.shape != shape:
            raise ValueError(
                f"stack: every tensor must have one shape; tensor 0 has {shape}, tensor {k} {t.shape}"
            )
    if not -len(shape) - 1 <= dim <= len(shape):
        raise ValueError(f"stack: dim {dim} is out of range for {len(shape) + 1} dimensions")
    dim %= len(shape) + 1
    return cat([reshape(t, shape[:dim] + (1,) + shape[dim:]) for t in tensors], dim)
