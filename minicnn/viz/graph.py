"""The autograd graph that ``backward`` walks, as Graphviz's DOT text and as a picture.

One node per Function (an operation the forward pass recorded), in the order backward
visits them, and one edge per tensor that flows from one to the next, labelled with
its shape and dtype. The leaves (the input, the parameters) are nodes too. Where a
value is used twice (ResNet's ``relu(Y + X)`` reads X on two paths; DenseNet's ``cat``
keeps every earlier output) its node has two edges out, and backward adds up the two
gradients that come back along them.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from ..tensor import Function, Tensor, _topological_order
from ._figure import write_atomically

DOT_HINT = "install Graphviz, whose `dot` program draws it (Debian: apt-get install graphviz)"


@dataclass
class Graph:
    """``functions``: the graph's Functions in the order backward calls them; ``source``:
    the graph as DOT text (always available); :meth:`save` draws it with Graphviz."""

    functions: list[Function]
    source: str
    edges: list[tuple[str, str, str]] = field(default_factory=list)  # (from, to, label)

    def save(self, path) -> Path:
        """Draw the graph into ``path`` (.png, .svg or .pdf; .dot writes the text)."""
        path = Path(path)
        kind = path.suffix.lstrip(".").lower() or "png"
        if kind in ("dot", "gv"):
            write_atomically(path, lambda file: file.write(self.source.encode()))
            return path
        dot = shutil.which("dot")
        if dot is None:
            raise RuntimeError(f"mc.viz.graph: cannot draw {path}: {DOT_HINT}. "
                               "The DOT text is Graph.source")  # fmt: skip
        drawn = subprocess.run([dot, f"-T{kind}"], input=self.source.encode(),
                               capture_output=True, check=False)  # fmt: skip
        if drawn.returncode != 0:
            raise RuntimeError(f"mc.viz.graph: dot failed on {path}: {drawn.stderr.decode()}")
        write_atomically(path, lambda file: file.write(drawn.stdout))
        return path


def graph(tensor: Tensor, path=None, names=None) -> Graph:
    """The graph that ``tensor.backward()`` would walk (call it before backward, which
    frees the graph). ``names``: a module (its parameters get their dotted names) or a
    dict of tensor -> name (or name -> tensor). Given ``path``, the picture is drawn
    there (:meth:`Graph.save`; without Graphviz, draw it later from ``graph(t).source``)."""
    if not isinstance(tensor, Tensor):
        raise TypeError(f"mc.viz.graph: expected a Tensor, got {type(tensor).__name__}")
    if tensor.creator is None:
        raise ValueError("mc.viz.graph: this tensor has no graph (a leaf, or computed under "
                         "no_grad, or with no input requiring grad)")  # fmt: skip
    labels = _parameter_names(names)
    functions = _topological_order(tensor.creator)
    node = {id(fn): f"f{k}" for k, fn in enumerate(functions)}
    lines = ["digraph autograd {", "  rankdir=BT;",
             '  node [fontname="Helvetica", fontsize=10]; edge [fontname="Helvetica", fontsize=8];',
             f'  out [label="output {_describe(tensor)}", shape=plaintext];',
             f"  {node[id(tensor.creator)]} -> out;"]  # fmt: skip
    edges, leaves = [], {}
    for fn in functions:
        lines.append(f'  {node[id(fn)]} [label="{_function_label(fn)}", shape=box, '
                     'style="rounded,filled", fillcolor="#dbe8f7"];')  # fmt: skip
        for value in fn.inputs:
            if isinstance(value, Tensor):  # a leaf: the input, a parameter, a constant
                if id(value) not in leaves:  # drawn once, however often it is read
                    leaves[id(value)] = f"leaf{len(leaves)}"
                    lines.append(_leaf_line(leaves[id(value)], value, labels))
                source = leaves[id(value)]
            else:
                source = node[id(value.creator)]
            label = _describe(value)
            lines.append(f'  {source} -> {node[id(fn)]} [label="{label}"];')
            edges.append((source, node[id(fn)], label))
    lines.append("}")
    result = Graph(functions, "\n".join(lines) + "\n", edges)
    if path is not None:
        result.save(path)
    return result


def _parameter_names(names) -> dict[int, str]:
    if names is None:
        return {}
    if hasattr(names, "named_parameters"):
        return {id(p): name for name, p in names.named_parameters()}
    labels = {}
    for key, value in dict(names).items():  # tensor -> name, or name -> tensor
        tensor, name = (key, value) if isinstance(key, Tensor) else (value, key)
        labels[id(tensor)] = str(name)
    return labels


def _leaf_line(name: str, leaf: Tensor, labels) -> str:
    label = labels.get(id(leaf), "leaf" if leaf.requires_grad else "input")
    color = "#fde9c8" if leaf.requires_grad else "#eeeeee"
    return f'  {name} [label="{label}", shape=ellipse, style=filled, fillcolor="{color}"];'


def _function_label(fn: Function) -> str:
    if fn.op_name == "conv2d":  # which algorithms compute it (engine_room/conv.py)
        return f"conv2d\\n{fn.description}"
    return fn.op_name


def _describe(value) -> str:
    """'(1, 6, 28, 28) float32': what flows along an edge."""
    return f"{tuple(value.shape)} {value.dtype}"
