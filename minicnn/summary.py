"""A per-layer table of a network: what the book prints by hand in each section
("Conv2d output shape: (1, 6, 28, 28)"), plus the algorithm each layer computes with,
its receptive field, parameters, FLOPs and activation memory.

>>> print(mc.summary(mc.models.lenet(), (1, 1, 28, 28)))           # every layer
>>> print(mc.summary(mc.models.resnet18(), (1, 1, 224, 224), depth=1))  # top-level blocks

One forward pass runs on an input of ``input_shape``; while it runs, each layer's
``forward`` is wrapped so that the wrapper can record what came out. The recording is
this file's own business: the wrappers are instance attributes that shadow the class's
``forward`` and are deleted afterwards, so the network is left exactly as it was.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy

from . import nn
from .backend import current_backend, pair
from .tensor import Tensor, enable_grad


@dataclass
class Row:
    """One recorded layer (or block): its dotted path in the network (``'3.1'``; ``''``
    for the network itself), its type, the shape of its output, its parameters (its
    sub-modules' included), its forward FLOPs and the bytes of its output."""

    path: str
    type: str
    output_shape: tuple[int, ...]
    params: int
    flops: int
    activation_bytes: int
    algorithm: str = ""  # how the layer computes on this backend: "im2col", "taps", ...
    receptive_field: str = ""  # the input pixels one output pixel sees: "5x5", or "all"


@dataclass(repr=False)
class Summary:
    """What :func:`summary` found; ``str(summary)`` is the table."""

    rows: list[Row]
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    total_params: int  # every parameter of the network once
    total_flops: int  # the leaf layers' FLOPs
    total_activation_bytes: int  # the leaf layers' outputs
    total_param_bytes: int
    dtype: numpy.dtype = field(default=numpy.dtype(numpy.float32))

    def __str__(self) -> str:
        header = ("layer", "type", "output shape", "algorithm", "receptive field", "params",
                  "FLOPs", "activations")  # fmt: skip
        body = [
            (
                row.path or "(net)",
                row.type,
                _shape_text(row.output_shape),
                row.algorithm,
                row.receptive_field,
                f"{row.params:,}",
                f"{row.flops:,}",
                _bytes_text(row.activation_bytes),
            )
            for row in self.rows
        ]
        total = ("total", "", "", "", "", f"{self.total_params:,}", f"{self.total_flops:,}",
                 _bytes_text(self.total_activation_bytes))  # fmt: skip
        widths = [max(len(line[k]) for line in [header, *body, total]) for k in range(8)]

        def format_line(cells):  # text columns to the left, numbers to the right
            return "  ".join(
                cell.ljust(width) if k < 5 else cell.rjust(width)
                for k, (cell, width) in enumerate(zip(cells, widths, strict=True))
            ).rstrip()

        rule = "-" * len(format_line(header))
        lines = [format_line(header), rule, *map(format_line, body), rule, format_line(total)]
        lines.append(
            f"input {_shape_text(self.input_shape)} {self.dtype}, output "
            f"{_shape_text(self.output_shape)}; parameters {_bytes_text(self.total_param_bytes)}; "
            f"{self.total_flops / 1e6:,.2f} MFLOPs per forward pass; total activations: "
            "every leaf layer's output"
        )
        return "\n".join(lines)

    __repr__ = __str__


def summary(model: nn.Module, input_shape, dtype=None, depth: int | None = None) -> Summary:
    """Run ``model`` once on a random input of ``input_shape`` and tabulate its layers.

    - ``depth=None``: one row per leaf layer (a module without sub-modules), in the
      order they were called; ``depth=1``: one row per top-level block (the book's
      ``for blk in net: X = blk(X)`` walk-through), ``depth=2`` one level deeper, and so
      on; leaves above that depth keep their own row.
    - ``dtype``: the input's dtype; by default the parameters' (float32 for a new network).

    ``algorithm`` says how each layer computes on the active backend: a Conv2d by
    "im2col" (the chapter's way, and always with ``mc.config.reference``), "taps",
    "direct" or "Winograd F(2x2, 3x3)" (rows of the engine room's table,
    engine_room/conv.py), followed by backward's row where it is another
    ("taps, dx by conv", "im2col, backward by im2col on wide rows");
    pooling by "window max" or "window mean", Linear by "matmul". ``receptive field`` is the
    chapter's idea made visible: how many input pixels (rows x columns) one output pixel
    of the layer depends on. Each convolution or pooling window of side k and stride s
    widens it by (k - 1) times the product of the strides before it; "all" after a
    global pooling or a Linear layer. Where branches meet (Inception's cat, ResNet's
    addition) the widest branch counts.

    The pass runs in evaluation mode on the active backend (no backward runs); every
    module's ``training`` flag is restored afterwards, and no statistic is updated.

    FLOPs count one forward pass, a multiply-add as 2, per leaf layer, for the batch:

    ==========================  ======================================================
    Conv2d                      2 * Cin * kh * kw * Cout * OH * OW * N  (+ Cout*OH*OW*N bias)
    Linear                      2 * in * out * N  (+ out * N bias)
    MaxPool2d, AvgPool2d        kh * kw per output element (compare or add)
    AdaptiveAvgPool2d           1 per input element
    BatchNorm1d/2d              4 per element (subtract, divide, scale, shift)
    Sigmoid, Tanh               4 per element;  ReLU 1 per element
    Flatten, Dropout (eval)     0 (no arithmetic)
    ==========================  ======================================================

    Other leaf modules count 0, and so does arithmetic a module does outside its
    sub-modules (``relu(Y + X)`` in ResNet's Residual, the ``cat`` of Inception and
    DenseNet): a few FLOPs per element, small beside the convolutions. Activation memory
    is the bytes of each layer's output; the total adds up the leaves' outputs, what
    training keeps for backward (roughly: functions inside modules keep more).
    """
    shape = _check_shape(input_shape)
    if depth is not None and (not isinstance(depth, int) or depth < 0):
        raise ValueError(f"summary: depth must be None or an int >= 0, got {depth!r}")
    params = list(model.parameters())
    if dtype is None:
        dtype = next((p.dtype for p in params if p.dtype.kind == "f"), numpy.float32)
    dtype = numpy.dtype(dtype)
    backend = params[0].backend if params else current_backend()  # where the model is
    x = numpy.random.default_rng(0).standard_normal(shape).astype(dtype)  # own generator:
    x = Tensor(backend.asarray(x), requires_grad=True)  # the global seed's draws are left
    # alone; a graph is recorded (no backward runs) to trace where branches meet

    recorder = _Recorder(model, depth, x)
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        with enable_grad():  # even inside the caller's no_grad
            output = model(x)
    finally:
        recorder.remove()
        for module, training in modes:
            object.__setattr__(module, "training", training)
    return Summary(
        rows=recorder.rows,
        input_shape=shape,
        output_shape=_shape_of(output),
        total_params=sum(p.size for p in params),
        total_flops=recorder.leaf_flops,
        total_activation_bytes=recorder.leaf_bytes,
        total_param_bytes=sum(p.data.nbytes for p in params),
        dtype=dtype,
    )


class _Recorder:
    """Wraps the ``forward`` of every module that gets a row and of every leaf.

    Leaves compute the FLOPs; a block's row adds up the FLOPs of the leaves that ran
    inside it, so ``open`` holds the rows whose forward is running.
    """

    def __init__(self, model: nn.Module, depth: int | None, network_input: Tensor):
        self.fields = _ReceptiveFields(network_input)
        self.rows: list[Row] = []
        self.open: list[list[int]] = []  # FLOPs so far of each block being run
        self.leaf_flops = self.leaf_bytes = 0
        self.wrapped: list[nn.Module] = []
        for path, module in model.named_modules():
            is_leaf = next(module.children(), None) is None
            level = 0 if path == "" else path.count(".") + 1
            gets_row = is_leaf if depth is None else level == depth or (is_leaf and level < depth)
            if is_leaf or gets_row:
                self._wrap(path, module, is_leaf, gets_row)

    def _wrap(self, path, module, is_leaf, gets_row):
        original = module.forward  # the bound method of the class

        def forward(*args, **kwargs):
            if gets_row:
                self.open.append([0])
            x = args[0] if args else None
            output = original(*args, **kwargs)
            field = self.fields.after(module, x, output) if is_leaf else self.fields.of(output)
            if is_leaf:
                flops = layer_flops(module, x, output)
                self.leaf_flops += flops
                self.leaf_bytes += _nbytes(output)
                for counter in self.open:
                    counter[0] += flops
            if gets_row:
                self.rows.append(
                    Row(path, type(module).__name__, _shape_of(output),
                        sum(p.size for p in module.parameters()), self.open.pop()[0],
                        _nbytes(output), layer_algorithm(module, x) if is_leaf else "",
                        _field_text(field))
                )  # fmt: skip
            return output

        object.__setattr__(module, "forward", forward)  # shadows the class's forward
        self.wrapped.append(module)

    def remove(self) -> None:
        for module in self.wrapped:
            module.__dict__.pop("forward", None)


class _ReceptiveFields:
    """The receptive field (rows, columns) of every tensor of the pass, with the product
    of the strides (rows, columns) that led to it; a field of None is "all".

    Leaf layers compute their output's field from their input's (:meth:`after`). A tensor
    that a block computed in its own arithmetic (``relu(Y + X)``, Inception's ``cat``) is
    traced through the autograd graph to the layers it came from: the widest of their
    fields is its own.
    """

    INPUT = ((1, 1), (1, 1))  # a pixel of the network's input sees itself

    def __init__(self, network_input: Tensor):
        self.network_input = network_input
        self.by_function: dict[int, tuple] = {}  # id(creator of a tensor) -> (field, jump)
        self.held: list = []  # what the ids refer to, alive until the summary is done

    def of(self, tensor):
        if not isinstance(tensor, Tensor):
            return None, None
        if tensor.creator is None:
            return self.INPUT if tensor is self.network_input else (None, None)
        return self._of_function(tensor.creator)

    def _of_function(self, fn):
        if id(fn) not in self.by_function:
            fields = [self.of(t) if isinstance(t, Tensor) else self._of_function(t.creator)
                      for t in fn.inputs or ()]  # fmt: skip
            fields = [fj for fj in fields if fj != (None, None)]  # weights have no field
            self._remember(fn, max(fields, key=_area, default=self.INPUT))
        return self.by_function[id(fn)]

    def after(self, module, x, y):
        """The field of leaf ``module``'s output ``y``, computed from its input ``x``'s."""
        field, jump = self.of(x)
        if field is not None:
            if isinstance(module, nn.Conv2d | nn.MaxPool2d | nn.AvgPool2d):
                (kh, kw), (sh, sw) = _kernel_and_stride(module)
                field = (field[0] + (kh - 1) * jump[0], field[1] + (kw - 1) * jump[1])
                jump = (jump[0] * sh, jump[1] * sw)
            elif isinstance(module, nn.Linear) or _is_global_pooling(module, y):
                field, jump = None, None
        if isinstance(y, Tensor) and y.creator is not None and y is not x:
            self._remember(y.creator, (field, jump))
        return field, jump

    def _remember(self, fn, field_and_jump) -> None:
        self.by_function[id(fn)] = field_and_jump
        self.held.append(fn)


def _area(field_and_jump) -> float:
    field = field_and_jump[0]
    return float("inf") if field is None else field[0] * field[1]


def _is_global_pooling(module, y) -> bool:
    """Adaptive pooling to one pixel: every output sees the whole input."""
    return isinstance(module, nn.AdaptiveAvgPool2d) and isinstance(y, Tensor) and y.shape[2:] == (1, 1)


def _kernel_and_stride(module):
    name = type(module).__name__
    kernel = pair(module.kernel_size, "kernel_size", name)
    stride = module.stride if module.stride is not None else module.kernel_size
    return kernel, pair(stride, "stride", name)


def _field_text(field_and_jump) -> str:
    field = field_and_jump[0] if field_and_jump else None
    return "all" if field is None else f"{field[0]}x{field[1]}"


def layer_algorithm(module: nn.Module, x) -> str:
    """How leaf ``module`` computes on input ``x``, on the backend that holds ``x``."""
    if isinstance(module, nn.Conv2d) and isinstance(x, Tensor):
        from .functional.conv import conv2d_algorithm

        return conv2d_algorithm(x.data, module.weight.shape, module.stride, module.padding)
    for types, name in _ALGORITHMS:
        if isinstance(module, types):
            return name
    return ""


_ALGORITHMS = (
    (nn.MaxPool2d, "window max"),
    (nn.AvgPool2d | nn.AdaptiveAvgPool2d, "window mean"),
    (nn.Linear, "matmul"),
)

_PER_ELEMENT = (  # FLOPs per output element of the elementwise layers
    ((nn.BatchNorm1d, nn.BatchNorm2d, nn.Sigmoid, nn.Tanh), 4),
    ((nn.ReLU,), 1),
)


def layer_flops(module: nn.Module, x, y) -> int:
    """Forward FLOPs of one leaf layer with input ``x`` and output ``y`` (the table in
    :func:`summary`'s docstring)."""
    if not isinstance(y, Tensor):
        return 0
    if isinstance(module, nn.Conv2d):
        cout, cin, kh, kw = module.weight.shape
        n, _, oh, ow = y.shape
        flops = 2 * cin * kh * kw * cout * oh * ow * n
        return flops + (y.size if module.bias is not None else 0)
    if isinstance(module, nn.Linear):
        out_features, in_features = module.weight.shape
        rows = y.size // out_features
        return 2 * in_features * out_features * rows + (y.size if module.bias is not None else 0)
    if isinstance(module, nn.MaxPool2d | nn.AvgPool2d):
        kh, kw = pair(module.kernel_size, "kernel_size", type(module).__name__)
        return kh * kw * y.size
    if isinstance(module, nn.AdaptiveAvgPool2d):
        return x.size if isinstance(x, Tensor) else 0
    for types, per_element in _PER_ELEMENT:
        if isinstance(module, types):
            return per_element * y.size
    return 0


def _check_shape(input_shape) -> tuple[int, ...]:
    if isinstance(input_shape, int):
        input_shape = (input_shape,)
    try:
        shape = tuple(int(n) for n in input_shape)
    except (TypeError, ValueError):
        shape = None
    if not shape or any(n <= 0 for n in shape) or shape != tuple(input_shape):
        raise ValueError(
            f"summary: input_shape must be a tuple of positive ints such as (1, 1, 28, 28) "
            f"(batch first), got {input_shape!r}"
        )
    return shape


def _shape_of(value) -> tuple[int, ...]:
    return tuple(value.shape) if isinstance(value, Tensor) else ()


def _nbytes(value) -> int:
    return int(value.data.nbytes) if isinstance(value, Tensor) else 0


def _shape_text(shape) -> str:
    return str(tuple(shape))  # as NumPy prints a shape: (1, 6, 28, 28)


def _bytes_text(n: int) -> str:
    """1536 -> '1.5 KiB'."""
    if n < 1024:
        return f"{n} B"
    exponent = min(int(math.log(n, 1024)), 3)
    return f"{n / 1024**exponent:,.1f} {('B', 'KiB', 'MiB', 'GiB')[exponent]}"
