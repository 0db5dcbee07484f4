"""Every backend provides the interface declared in backend/interface.py, signatures included.

The protocols are what a learner reads to know what a backend must provide; these tests
keep them true. numpy provides ``Backend``; numba and cupy ``FastBackend`` too, and the
protocol of each capability flag they set (``interface.CAPABILITIES``). Where no GPU
answers, cupy is the tests' emulation (the ``backend`` fixture, tests/conftest.py). The
other way round, every backend attribute the rest of minicnn uses is declared there.
"""

import ast
import inspect
from pathlib import Path

from minicnn.backend import interface

# What each backend must provide, spelled out: a backend that dropped a protocol, or
# turned a capability flag off, would otherwise be held to less without anyone noticing.
PROTOCOLS = {
    "numpy": {interface.Backend},
    "numba": {interface.Backend, interface.FastBackend, interface.WinogradBackend,
              interface.WideRowsBackend, interface.DirectConvBackend},  # fmt: skip
    "cupy": {interface.Backend, interface.FastBackend},
}
MINICNN = Path(interface.__file__).parents[1]


def members(protocol) -> dict:
    """A protocol's members, its bases' included: name -> its function for a method,
    None for an attribute."""
    found = {}
    for cls in reversed(protocol.__mro__):
        if cls.__module__ != interface.__name__:  # Protocol, Generic, object
            continue
        found.update(dict.fromkeys(vars(cls).get("__annotations__", {})))
        found.update({name: value for name, value in vars(cls).items()
                      if inspect.isfunction(value) and not name.startswith("_")})  # fmt: skip
    return found


def parameters(function) -> list[tuple]:
    """(name, kind, default and its type) of each parameter, ``self`` included; a
    decorated method's are its own (``functools.wraps``: engine_room/fallback.py)."""
    return [(p.name, p.kind, p.default, type(p.default))
            for p in inspect.signature(function).parameters.values()]  # fmt: skip


def test_the_expected_protocols_follow_the_capability_flags(backend):
    protocols = PROTOCOLS[backend.name]
    if interface.FastBackend not in protocols:
        return
    for flag, protocol in interface.CAPABILITIES.items():
        assert isinstance(getattr(backend, flag), bool), flag
        assert getattr(backend, flag) == (protocol in protocols), flag


def test_each_backend_provides_every_member_of_its_protocols(backend):
    problems = []
    for protocol in sorted(PROTOCOLS[backend.name], key=lambda p: p.__name__):
        assert isinstance(backend, protocol), protocol.__name__
        for name, declared in members(protocol).items():
            where = f"{protocol.__name__}.{name}"
            if not hasattr(backend, name):
                problems.append(f"{where}: missing")
            elif declared is None:
                continue
            elif not callable(own := getattr(type(backend), name, None)):
                problems.append(f"{where}: not a method")
            elif parameters(own) != parameters(declared):
                problems.append(f"{where}: {inspect.signature(own)} is not "
                                f"{inspect.signature(declared)}")  # fmt: skip
    assert not problems, f"{backend.name}: " + "; ".join(problems)


def test_the_interface_has_the_methods_the_textbook_path_and_conv_plan_call():
    """Every ``backend.<name>`` outside the backends is declared: what functional/,
    tensor.py, nn/, optim.py and the rest ask of any backend is in ``Backend`` (or an
    optional hook); what engine_room/conv.py asks is in a fast backend's protocols."""
    everyone = set(members(interface.Backend)) | set(interface.OPTIONAL)
    fast = everyone.union(*(members(p) for p in interface.CAPABILITIES.values()))
    undeclared = {}
    for path in sorted(MINICNN.rglob("*.py")):
        part = path.relative_to(MINICNN).parts[0]
        if part == "backend" or (part == "engine_room" and path.name != "conv.py"):
            continue  # the backends themselves
        allowed = fast if path.name == "conv.py" and part == "engine_room" else everyone
        if names := backend_attributes(path) - allowed:
            undeclared[str(path.relative_to(MINICNN))] = sorted(names)
    assert not undeclared, f"backend attributes no protocol declares: {undeclared}"


def backend_attributes(path: Path) -> set[str]:
    """The attributes ``path`` reads from a backend: ``backend.x``, ``self.backend.x``,
    ``backend_of(a).x``, ``current_backend().x``, ``get_backend(n).x``, and
    ``getattr(backend, "x", ...)``."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Attribute) and _is_backend(node.value):
            names.add(node.attr)
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
              and node.func.id in ("getattr", "hasattr") and _is_backend(node.args[0])
              and isinstance(node.args[1], ast.Constant)):  # fmt: skip
            names.add(node.args[1].value)
    return names


def _is_backend(node) -> bool:
    if isinstance(node, ast.Name):
        return node.id == "backend"
    if isinstance(node, ast.Attribute):  # x.backend, but not the package minicnn.backend
        return node.attr == "backend" and not (
            isinstance(node.value, ast.Name) and node.value.id == "minicnn")
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id in ("backend_of", "current_backend", "get_backend"))  # fmt: skip
