"""Modules: the containers that hold parameters and compose layers into networks.

A :class:`Module` registers, by attribute assignment, its :class:`Parameter` s
(trainable tensors), its buffers (state that is saved but not trained, such as batch
norm's running statistics) and its sub-modules. From that registry come
``parameters()``, ``state_dict()`` (dotted names such as ``1.0.conv1.weight``, the same
as PyTorch's for the same nesting), ``train()``/``eval()``, ``double()``, ``to()``...
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator

import numpy

from ..backend import current_backend, get_backend
from ..tensor import Tensor, as_tensor


class Parameter(Tensor):
    """A tensor that is a trainable weight of a module (``requires_grad`` by default)."""

    def __init__(self, data, requires_grad: bool = True):
        """``data``: a Tensor, a backend's array, or host data (a NumPy array, which goes
        to the active backend, as ``mc.tensor``'s does: on a GPU, to the device)."""
        super().__init__(_on_active_backend(data), requires_grad=requires_grad)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


_call_depth = 0  # how many Module.__call__ are running, to name a failing layer once, at the top


class Module:
    """Base class of every layer and network. Subclasses set attributes in ``__init__``
    and compute in ``forward``; call the module itself, not ``forward``."""

    training: bool

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    # ---- registration by attribute -----------------------------------------------
    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise AttributeError(
                f"{type(self).__name__}: call super().__init__() before assigning attributes"
            )
        params, buffers, modules = self._parameters, self._buffers, self._modules
        if isinstance(value, Parameter):
            registry = params
        elif isinstance(value, Module):
            registry = modules
        elif name in buffers and (value is None or isinstance(value, Tensor)):
            registry = buffers  # new values for a buffer (bn.running_mean = ...) keep it a buffer
        elif value is None and (name in params or name in modules):
            registry = params if name in params else modules  # None keeps the slot, as in PyTorch
        else:
            registry = None
        for other in (params, buffers, modules):
            if other is not registry:
                other.pop(name, None)
        self.__dict__.pop(name, None)  # a plain attribute would hide the registered value
        if registry is None:
            object.__setattr__(self, name, value)
        else:
            registry[name] = value

    def __getattr__(self, name):  # only called when normal lookup fails
        for registry in ("_parameters", "_buffers", "_modules"):
            values = self.__dict__.get(registry, {})
            if name in values:
                return values[name]
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    def __delattr__(self, name):
        for registry in (self._parameters, self._buffers, self._modules):
            if name in registry:
                del registry[name]
                return
        object.__delattr__(self, name)

    def register_buffer(self, name: str, value) -> None:
        """Keep ``value`` (a Tensor, array or None) as state: saved, moved, never trained."""
        self._buffers[name] = None if value is None else Tensor(_on_active_backend(value))

    def add_module(self, name: str, module: Module) -> None:
        self._modules[str(name)] = module

    # ---- calling ------------------------------------------------------------------
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def __call__(self, *args, **kwargs):
        """``forward`` on the arguments; NumPy arrays become tensors on the active backend.

        When a layer rejects its input, the error says which layer, by its name in the
        outermost module called (``layer '1.0.conv1' (Conv2d(...))``).
        """
        global _call_depth
        args = tuple(as_tensor(a) if isinstance(a, numpy.ndarray) else a for a in args)
        _call_depth += 1
        try:
            return self.forward(*args, **kwargs)
        except (ValueError, TypeError) as error:
            if not hasattr(error, "minicnn_layer"):
                error.minicnn_layer = self
            if _call_depth == 1 and error.minicnn_layer is not self:
                raise _name_layer(self, error) from error
            raise
        finally:
            _call_depth -= 1

    # ---- walking the tree -----------------------------------------------------------
    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        """``('', self)`` then every sub-module, depth first, with its dotted name."""
        seen = set()
        stack = [(prefix, self)]
        while stack:
            name, module = stack.pop()
            if id(module) in seen:
                continue
            seen.add(id(module))
            yield name, module
            children = [
                (f"{name}.{child_name}" if name else child_name, child)
                for child_name, child in module._modules.items()
                if child is not None
            ]
            stack.extend(reversed(children))

    def modules(self) -> Iterator[Module]:
        for _, module in self.named_modules():
            yield module

    def named_children(self) -> Iterator[tuple[str, Module]]:
        yield from ((n, m) for n, m in self._modules.items() if m is not None)

    def children(self) -> Iterator[Module]:
        for _, module in self.named_children():
            yield module

    def named_parameters(self) -> Iterator[tuple[str, Parameter]]:
        """Every parameter once, with its dotted name (``'0.weight'``)."""
        seen = set()
        for module_name, module in self.named_modules():
            for name, param in module._parameters.items():
                if param is not None and id(param) not in seen:
                    seen.add(id(param))
                    yield (f"{module_name}.{name}" if module_name else name), param

    def parameters(self) -> Iterator[Parameter]:
        for _, param in self.named_parameters():
            yield param

    def named_buffers(self) -> Iterator[tuple[str, Tensor]]:
        for module_name, module in self.named_modules():
            for name, buffer in module._buffers.items():
                if buffer is not None:
                    yield (f"{module_name}.{name}" if module_name else name), buffer

    def buffers(self) -> Iterator[Tensor]:
        for _, buffer in self.named_buffers():
            yield buffer

    def _named_state(self) -> Iterator[tuple[str, Tensor]]:
        """Parameters then buffers of each module, in PyTorch's ``state_dict`` order."""
        for module_name, module in self.named_modules():
            for registry in (module._parameters, module._buffers):
                for name, value in registry.items():
                    if value is not None:
                        yield (f"{module_name}.{name}" if module_name else name), value

    # ---- state ------------------------------------------------------------------------
    def state_dict(self) -> OrderedDict[str, numpy.ndarray]:
        """Name -> NumPy copy of every parameter and buffer (PyTorch's keys)."""
        return OrderedDict((name, value.numpy()) for name, value in self._named_state())

    def load_state_dict(self, state_dict, strict: bool = True) -> None:
        """Copy values in by name, keeping this module's dtype and backend.

        Values may be NumPy arrays, tensors, or anything with ``.numpy()`` (a torch
        tensor: ``{k: v.numpy() for k, v in torch_net.state_dict().items()}`` also works).
        Missing, unexpected and mis-shaped keys are reported together in one error
        (with ``strict=False`` only mis-shaped keys are an error).
        """
        own = OrderedDict(self._named_state())
        incoming = {name: _to_numpy(value) for name, value in state_dict.items()}
        missing = [k for k in own if k not in incoming]
        unexpected = [k for k in incoming if k not in own]
        mis_shaped = [
            f"{k}: expected {own[k].shape}, got {tuple(incoming[k].shape)}"
            for k in own
            if k in incoming and tuple(incoming[k].shape) != own[k].shape
        ]
        problems = []
        if strict and missing:
            problems.append(f"missing keys: {missing}")
        if strict and unexpected:
            problems.append(f"unexpected keys: {unexpected}")
        if mis_shaped:
            problems.append(f"mis-shaped keys: {mis_shaped}")
        if problems:
            raise ValueError(
                f"load_state_dict into {type(self).__name__}: " + "; ".join(problems)
            )
        for name, target in own.items():
            if name in incoming:
                backend = target.backend
                target.data = backend.asarray(incoming[name], dtype=target.dtype).copy()

    # ---- modes, dtypes, devices ---------------------------------------------------
    def train(self, mode: bool = True) -> Module:
        for module in self.modules():
            object.__setattr__(module, "training", mode)
        return self

    def eval(self) -> Module:
        return self.train(False)

    def zero_grad(self) -> None:
        for param in self.parameters():
            param.grad = None

    def double(self) -> Module:
        return self._map_floats(lambda data: data.astype(numpy.float64))

    def float(self) -> Module:
        return self._map_floats(lambda data: data.astype(numpy.float32))

    def to(self, backend: str) -> Module:
        """Move every parameter and buffer to backend ``backend`` (``"cupy"``, ``"numpy"``)."""
        target = get_backend(backend)
        for _, value in self._named_state():
            value.data = target.asarray(value.data)
            if value.grad is not None:
                value.grad = Tensor(target.asarray(value.grad.data))
        return self

    def _map_floats(self, convert) -> Module:
        for _, value in self._named_state():
            if value.dtype.kind == "f":
                value.data = convert(value.data)
                value.grad = None
        return self

    # ---- printing ------------------------------------------------------------------
    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        lines = [f"({name}): " + repr(child).replace("\n", "\n  ") for name, child in self.named_children()]
        head = f"{type(self).__name__}({self.extra_repr()}"
        if not lines:
            return head + ")"
        return head + "\n  " + "\n  ".join(lines) + "\n)"


class Sequential(Module):
    """Modules applied in order; children are named ``'0'``, ``'1'``, ... (or by an
    OrderedDict's keys). Indexable, sliceable, iterable."""

    def __init__(self, *modules):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], OrderedDict):
            for name, module in modules[0].items():
                self.add_module(name, module)
        else:
            for index, module in enumerate(modules):
                self.add_module(str(index), module)

    def forward(self, x):
        for module in self:
            x = module(x)
        return x

    def append(self, module: Module) -> Sequential:
        self.add_module(str(len(self)), module)
        return self

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def __getitem__(self, index):
        items = list(self._modules.items())
        if isinstance(index, slice):  # keeps the names, as PyTorch does: net[2:] has '2', '3'...
            return Sequential(OrderedDict(items[index]))
        return items[index][1]


def _on_active_backend(value):
    """A Tensor's array as it is; host data (NumPy arrays, lists) on the active backend."""
    if isinstance(value, Tensor):
        return value.data
    backend = current_backend()
    if backend.is_array(value) or hasattr(value, "__cuda_array_interface__"):
        return value
    return backend.asarray(numpy.asarray(value))


def _to_numpy(value) -> numpy.ndarray:
    if isinstance(value, Tensor) or hasattr(value, "numpy"):
        value = value.detach().numpy() if hasattr(value, "detach") else value.numpy()
    elif hasattr(value, "__cuda_array_interface__"):  # a CuPy array: copied, never implicitly
        value = value.get()
    return numpy.asarray(value)


def _name_layer(root: Module, error: Exception) -> Exception:
    """The same error, its message prefixed with the failing layer's dotted name."""
    layer = error.minicnn_layer
    path = next((name for name, module in root.named_modules() if module is layer), "?")
    summary = repr(layer).split("\n", 1)[0]
    root_name = getattr(root, "name", None) or type(root).__name__
    named = type(error)(f"layer '{path}' ({summary}) of {root_name}: {error}")
    named.minicnn_layer = layer
    return named
