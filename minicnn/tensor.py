"""Reverse-mode automatic differentiation, define-by-run: the whole autograd core.

Every operation is a :class:`Function`. Calling one on tensors computes the result
at once (``forward``) and, when a gradient is wanted, records the function as the
result's ``creator``; the recorded functions form a graph from the loss back to the
leaves (parameters and inputs). ``loss.backward()`` walks that graph once, in reverse
topological order, calling each function's ``backward`` (its vector-Jacobian product)
and adding up the gradients that reach a value along several paths (``y = x + x``,
every residual and dense connection).

Backward works on raw arrays, not tensors: minicnn computes first derivatives only.
"""

from __future__ import annotations

import numpy

from .backend import backend_of, current_backend, get_backend

_grad_enabled = True


class no_grad:
    """Context manager under which no graph is recorded (evaluation, optimizer steps)."""

    def __enter__(self):
        global _grad_enabled
        self._previous = _grad_enabled
        _grad_enabled = False

    def __exit__(self, *exc_info):
        global _grad_enabled
        _grad_enabled = self._previous


class enable_grad(no_grad):
    """Context manager under which the graph is recorded, even inside ``no_grad``."""

    def __enter__(self):
        global _grad_enabled
        self._previous = _grad_enabled
        _grad_enabled = True


def is_grad_enabled() -> bool:
    return _grad_enabled


class Tensor:
    """An array of the active backend, plus what autograd needs: ``grad``,
    ``requires_grad`` and ``creator`` (the Function that computed it, if recorded)."""

    __array_priority__ = 100  # so that ``ndarray * Tensor`` calls Tensor.__rmul__

    def __init__(self, data, requires_grad: bool = False):
        backend_of(data)  # a clear TypeError for anything but a backend array
        self.data = data
        self.grad: Tensor | None = None
        self.requires_grad = bool(requires_grad)
        self.creator: Function | None = None

    # ---- what it holds ----------------------------------------------------------
    shape = property(lambda self: tuple(self.data.shape))
    ndim = property(lambda self: self.data.ndim)
    dtype = property(lambda self: self.data.dtype)
    size = property(lambda self: int(self.data.size))
    backend = property(lambda self: backend_of(self.data))
    device = property(lambda self: self.backend.device)

    def __len__(self) -> int:
        return len(self.data)

    def __repr__(self) -> str:
        body = numpy.array2string(self.numpy(), separator=", ", prefix="tensor(", precision=4)
        extra = f", dtype={self.dtype}"
        if self.device != "cpu":
            extra += f", device={self.device!r}"
        if self.creator is not None:
            extra += f", creator={type(self.creator).__name__}"
        elif self.requires_grad:
            extra += ", requires_grad=True"
        return f"tensor({body}{extra})"

    def numpy(self) -> numpy.ndarray:
        """A NumPy copy of the data, from any backend."""
        return self.backend.to_numpy(self.data)

    def item(self):
        if self.size != 1:
            raise ValueError(
                f"item(): only a one-element tensor has an item, shape is {self.shape}"
            )
        return self.data.reshape(()).item()

    def detach(self) -> Tensor:
        """The same data, cut from the graph."""
        return Tensor(self.data)

    def requires_grad_(self, flag: bool = True) -> Tensor:
        self.requires_grad = flag
        return self

    def to(self, backend: str) -> Tensor:
        """A copy on backend ``backend`` (``"numpy"``, ``"numba"``, ``"cupy"``), cut from the graph."""
        return Tensor(get_backend(backend).asarray(self.data), self.requires_grad)

    def astype(self, dtype) -> Tensor:
        return F.astype(self, dtype)

    def double(self) -> Tensor:
        return self.astype(numpy.float64)

    def float(self) -> Tensor:
        return self.astype(numpy.float32)

    # ---- backward ---------------------------------------------------------------
    def backward(self, grad=None, retain_graph: bool = False) -> None:
        """Fill ``.grad`` of every leaf tensor that requires it with d(self)/d(leaf).

        ``grad`` defaults to 1 for a scalar. Gradients add into existing ``.grad``
        (call ``zero_grad`` between steps). The graph is freed as it is walked, unless
        ``retain_graph`` keeps it for a second backward.
        """
        if not self.requires_grad:
            raise RuntimeError("backward(): this tensor does not require grad and has no graph")
        if grad is None:
            if self.size != 1:
                raise RuntimeError(
                    f"backward(): grad can be implicit only for a scalar, shape is {self.shape}"
                )
            grad = self.backend.xp.ones_like(self.data)
        else:
            grad = self._given_grad(grad)
        if self.creator is None:  # a leaf: d(self)/d(self) = 1
            _accumulate_leaf(self, grad)
            return

        grads = {id(self.creator): grad}  # function -> gradient of its output
        for fn in _topological_order(self.creator):
            grad_output = grads.pop(id(fn))
            grad_inputs = fn.backward(grad_output)
            if not isinstance(grad_inputs, tuple):
                grad_inputs = (grad_inputs,)
            for tensor, grad_input in zip(fn.inputs, grad_inputs, strict=True):
                if grad_input is None or not tensor.requires_grad:
                    continue
                if tensor.creator is None:
                    _accumulate_leaf(tensor, grad_input)
                else:  # paths that meet add up
                    key = id(tensor.creator)
                    grads[key] = grads[key] + grad_input if key in grads else grad_input
            if not retain_graph:
                fn.release()

    def _given_grad(self, grad):
        """The caller's ``grad`` as an array of this tensor's backend and shape: a copy,
        so that no leaf keeps the caller's own array as its gradient."""
        if isinstance(grad, Tensor):
            grad = grad.data
        if self.backend.is_array(grad):
            grad = grad.copy()
        else:  # a number, a list, or an array of another device: a new array already
            grad = self.backend.asarray(grad, dtype=None if _is_array(grad) else self.dtype)
        if tuple(grad.shape) != self.shape:
            raise ValueError(
                f"backward(): grad has shape {tuple(grad.shape)} but the tensor has shape "
                f"{self.shape}; they must be equal"
            )
        return grad

    def zero_grad(self) -> None:
        self.grad = None

    # ---- operator sugar, all dispatching to minicnn.functional --------------------
    def __add__(self, other):
        return F.add(self, other)

    def __radd__(self, other):
        return F.add(other, self)

    def __sub__(self, other):
        return F.sub(self, other)

    def __rsub__(self, other):
        return F.sub(other, self)

    def __mul__(self, other):
        return F.mul(self, other)

    def __rmul__(self, other):
        return F.mul(other, self)

    def __truediv__(self, other):
        return F.div(self, other)

    def __rtruediv__(self, other):
        return F.div(other, self)

    def __neg__(self):
        return F.neg(self)

    def __pow__(self, exponent):
        return F.pow(self, exponent)

    def __matmul__(self, other):
        return F.matmul(self, other)

    def __rmatmul__(self, other):
        return F.matmul(other, self)

    def __getitem__(self, index):
        return F.getitem(self, index)

    def exp(self):
        return F.exp(self)

    def log(self):
        return F.log(self)

    def relu(self):
        return F.relu(self)

    def sigmoid(self):
        return F.sigmoid(self)

    def tanh(self):
        return F.tanh(self)

    def sum(self, axis=None, keepdims=False):
        return F.sum(self, axis, keepdims)

    def mean(self, axis=None, keepdims=False):
        return F.mean(self, axis, keepdims)

    def max(self, axis: int, keepdims=False):
        return F.max(self, axis, keepdims)

    def reshape(self, *shape):
        return F.reshape(self, shape[0] if len(shape) == 1 else shape)

    def transpose(self, *axes):
        return F.transpose(self, axes[0] if len(axes) == 1 else (axes or None))

    @property
    def T(self):
        return F.transpose(self)

    def flatten(self, start_dim=0, end_dim=-1):
        return F.flatten(self, start_dim, end_dim)

    def argmax(self, axis=None):
        """Indices of the maxima (no gradient)."""
        return Tensor(self.data.argmax(axis=axis))


def _accumulate_leaf(tensor: Tensor, grad) -> None:
    """Leaves keep their gradient; a second path (or a second backward) adds to it.

    The first gradient becomes the leaf's own array: ``backend.adopt_grad`` gives a
    copy, or the array itself where the backend knows no one else holds it.
    """
    if tensor.grad is None:
        tensor.grad = Tensor(tensor.backend.adopt_grad(grad))
    else:
        tensor.grad = Tensor(tensor.grad.data + grad)


def _topological_order(root: Function) -> list[Function]:
    """Every function that ``root`` depends on, each after all of its consumers.

    An iterative depth-first search (recursion would overflow on deep networks): a
    function is appended once all functions it reads from are done; the reversed list
    puts every function before the ones that produced its inputs.
    """
    order, seen = [], set()
    stack = [(root, False)]
    while stack:
        fn, inputs_done = stack.pop()
        if inputs_done:
            order.append(fn)
            continue
        if id(fn) in seen:
            continue
        if fn.inputs is None:
            raise RuntimeError(
                f"backward(): the graph through {type(fn).__name__} was already freed by an "
                "earlier backward; pass retain_graph=True to that one to walk it twice"
            )
        seen.add(id(fn))
        stack.append((fn, True))
        for tensor in fn.inputs:
            if tensor.creator is not None and id(tensor.creator) not in seen:
                stack.append((tensor.creator, False))
    order.reverse()
    return order


class Function:
    """One differentiable operation: ``forward`` on arrays, ``backward`` its vector-Jacobian
    product. Subclasses keep whatever ``backward`` needs as attributes of ``self``.

    ``backward(grad_output)`` returns one gradient per input (a tuple when there are
    several; ``None`` for an input that needs none, see ``self.needs_input_grad``), each
    of its input's shape.
    """

    #: used in error messages: the operation's name and what its inputs are called
    name: str | None = None
    input_names: tuple[str, ...] = ()

    inputs: tuple[Tensor | _Edge, ...] | None = ()  # leaves as themselves, the rest as edges
    needs_input_grad: tuple[bool, ...] = ()

    def __call__(self, *inputs) -> Tensor:
        tensors = _as_tensors(self, inputs)
        self.needs_input_grad = tuple(t.requires_grad for t in tensors)
        record = _grad_enabled and any(self.needs_input_grad)
        result = self.forward(*(t.data for t in tensors))
        if isinstance(result, numpy.generic):  # NumPy reductions return scalars, not arrays
            result = numpy.asarray(result)
        output = Tensor(result)
        if record:
            self.inputs = tuple(t if t.creator is None else _Edge(t) for t in tensors)
            output.requires_grad = True
            output.creator = self
        return output

    def forward(self, *arrays):
        raise NotImplementedError

    def backward(self, grad_output):
        raise NotImplementedError

    def release(self) -> None:
        """Drop the saved arrays and the inputs: the graph through here is gone."""
        self.__dict__.clear()
        self.inputs = None

    @property
    def op_name(self) -> str:
        return self.name or type(self).__name__.lower()


class _Edge:
    """What backward needs of an input that a function computed: that function, not the
    array. Holding the tensor itself would keep every intermediate array of the forward
    pass alive until backward, saved or not (a network's memory, doubled)."""

    __slots__ = ("creator", "requires_grad", "shape", "dtype")

    def __init__(self, tensor: Tensor):
        self.creator, self.requires_grad = tensor.creator, tensor.requires_grad
        self.shape, self.dtype = tensor.shape, tensor.dtype  # for mc.viz.graph's labels


def _as_tensors(fn: Function, inputs) -> tuple[Tensor, ...]:
    """Wrap the arguments of ``fn`` as tensors (arrays as constants, numbers in the dtype of
    the first float tensor), and refuse mixed devices or mixed float dtypes."""
    inputs = [Tensor(x) if _is_array(x) else x for x in inputs]
    tensors = [x for x in inputs if isinstance(x, Tensor)]
    if not tensors:
        raise TypeError(f"{fn.op_name}: expected at least one Tensor or array argument")
    if len({type(t.data) for t in tensors}) > 1:
        where = ", ".join(
            f"{_input_name(fn, k)} on {x.device}"
            for k, x in enumerate(inputs)
            if isinstance(x, Tensor)
        )
        raise TypeError(
            f"{fn.op_name}: inputs live on different devices ({where}); move them with .to()"
        )
    float_dtypes = [t.dtype for t in tensors if t.dtype.kind == "f"]
    if len(set(float_dtypes)) > 1:
        which = ", ".join(
            f"{_input_name(fn, k)} {x.dtype}" for k, x in enumerate(inputs) if isinstance(x, Tensor)
        )
        raise TypeError(
            f"{fn.op_name}: inputs have different float dtypes ({which}); convert with "
            ".float() or .double() (or Module.float()/.double())"
        )
    number_dtype = float_dtypes[0] if float_dtypes else None
    xp = tensors[0].backend.xp
    return tuple(
        x if isinstance(x, Tensor) else Tensor(xp.asarray(x, dtype=number_dtype)) for x in inputs
    )


def _is_array(obj) -> bool:
    return isinstance(obj, numpy.ndarray) or hasattr(obj, "__cuda_array_interface__")


def _input_name(fn: Function, k: int) -> str:
    return fn.input_names[k] if k < len(fn.input_names) else f"input {k}"


def tensor(data, requires_grad: bool = False, dtype=None) -> Tensor:
    """A new leaf tensor on the active backend, holding a copy of ``data`` (as
    ``torch.tensor``). Keeps the array's dtype unless ``dtype`` is given (Python floats
    become float64, as in NumPy)."""
    array = _on_backend(data, dtype)
    if array is data or (isinstance(data, Tensor) and array is data.data):
        array = array.copy()
    return Tensor(array, requires_grad=requires_grad)


def as_tensor(value) -> Tensor:
    """``value`` itself when it is a Tensor, otherwise a tensor on the active backend that
    shares its memory where it can (as ``torch.as_tensor``)."""
    return value if isinstance(value, Tensor) else Tensor(_on_backend(value, None))


def _on_backend(data, dtype):
    if isinstance(data, Tensor):
        data = data.data
    backend = current_backend()
    if not (backend.is_array(data) or _is_array(data)):  # a number, a list: first to NumPy
        data = numpy.asarray(data)
    return backend.asarray(data, dtype=dtype)  # copies across devices when it must


# Operator sugar (x + y, x @ w, x.sum()) dispatches to minicnn.functional, which
# imports this module; importing it last, once Tensor and Function exist, breaks the cycle.
from . import functional as F  # noqa: E402
