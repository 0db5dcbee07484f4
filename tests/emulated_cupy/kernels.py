"""``cupy.ElementwiseKernel`` on the CPU: the kernel's own CUDA body, compiled by g++.

CuPy turns ``ElementwiseKernel(params, outputs, body)`` into a CUDA function whose
threads each run ``body`` for one element ``i``. Here the same body becomes a C++
function that runs it for every ``i`` in turn::

    for (ptrdiff_t i = 0; i < n; i++) {
        const T x = _x[i];          // a non-raw input: its element i
        T &y = _y[i];               // an output: its element i, written in place
        <body>                      // raw inputs are pointers: x[k]
    }

with the few CUDA names the bodies use defined for the CPU (``isnan``, ``fabs``,
``exp``). The arguments are checked as CuPy checks them: their number, one dtype per
type placeholder (``T``), arrays where arrays are declared; non-raw inputs broadcast
to the outputs' shape. Each (kernel, dtypes) pair is compiled once, cached on disk by
the hash of its source, and loaded with ctypes.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy

#: CuPy's names for fixed types in a parameter list, and the C type of each dtype.
FIXED_TYPES = {"int32": numpy.int32, "int64": numpy.int64, "uint8": numpy.uint8,
               "float32": numpy.float32, "float64": numpy.float64, "bool": numpy.bool_}  # fmt: skip
C_TYPES = {"float32": "float", "float64": "double", "int8": "signed char", "uint8": "unsigned char",
           "int16": "short", "uint16": "unsigned short", "int32": "int", "uint32": "unsigned int",
           "int64": "long long", "uint64": "unsigned long long", "bool": "bool"}  # fmt: skip
CTYPES = {"float32": ctypes.c_float, "float64": ctypes.c_double, "int8": ctypes.c_int8,
          "uint8": ctypes.c_uint8, "int16": ctypes.c_int16, "uint16": ctypes.c_uint16,
          "int32": ctypes.c_int32, "uint32": ctypes.c_uint32, "int64": ctypes.c_int64,
          "uint64": ctypes.c_uint64, "bool": ctypes.c_bool}  # fmt: skip

#: What a CUDA kernel body may call that C++ spells otherwise, made to mean the same.
CPU_PRELUDE = """
#include <cmath>
#include <cstddef>
using std::exp; using std::fabs; using std::isnan; using std::log; using std::sqrt;
"""

CACHE = Path(tempfile.gettempdir()) / f"minicnn-emulated-cupy-{os.getuid()}"


@dataclass(frozen=True)
class Param:
    """One declared parameter: ``raw T x``, ``T y`` or ``int32 N``."""

    name: str
    type: str  # a fixed type name (int32) or a placeholder (T)
    raw: bool

    @property
    def placeholder(self) -> bool:
        return self.type not in FIXED_TYPES


def parse_params(text: str) -> list[Param]:
    """CuPy's parameter syntax: comma-separated ``[raw] TYPE NAME``."""
    params = []
    for part in text.split(","):
        words = part.split()
        if not words:
            continue
        raw = words[0] == "raw"
        if raw:
            words = words[1:]
        if len(words) != 2 or not re.fullmatch(r"[A-Za-z_]\w*", words[1]):
            raise ValueError(f"bad parameter {part.strip()!r} in {text!r}")
        params.append(Param(words[1], words[0], raw))
    return params


class ElementwiseKernel:
    """``cupy.ElementwiseKernel(in_params, out_params, operation, name, preamble=...)``,
    run on the CPU. Called with the inputs and then the outputs, as minicnn calls it."""

    def __init__(self, in_params, out_params, operation, name="kernel", preamble="", **options):
        self.inputs, self.outputs = parse_params(in_params), parse_params(out_params)
        self.body, self.name, self.preamble = operation, name, preamble
        self._compiled: dict = {}

    def __call__(self, *args, **kwargs):
        from . import ndarray

        if kwargs:
            raise TypeError(f"{self.name}: unexpected keyword arguments {sorted(kwargs)}")
        n_in, n_out = len(self.inputs), len(self.outputs)
        if len(args) not in (n_in, n_in + n_out):
            raise TypeError(
                f"Wrong number of arguments for {self.name!r}. "
                f"It must be either {n_in} or {n_in + n_out} (with outputs), but given {len(args)}."
            )
        for param, arg in zip(self.inputs + self.outputs, args, strict=False):
            if isinstance(arg, numpy.ndarray) and not isinstance(arg, ndarray):
                raise TypeError(f"{self.name}: argument {param.name} is a host (NumPy) array")
            if param.raw and not isinstance(arg, ndarray):
                raise TypeError(f"{self.name}: raw argument {param.name} must be a device array")
        types = self._placeholder_types(args)
        arrays = [a for p, a in zip(self.inputs, args, strict=False) if not p.raw and isinstance(a, ndarray)]
        outputs = list(args[n_in:])
        shape = numpy.broadcast_shapes(*[a.shape for a in arrays + outputs]) if arrays + outputs else ()
        if not outputs:
            outputs = [ndarray(shape, dtype=types[p.type] if p.placeholder else FIXED_TYPES[p.type])
                       for p in self.outputs]  # fmt: skip
        for param, out in zip(self.outputs, outputs, strict=True):
            if not isinstance(out, ndarray):
                raise TypeError(f"{self.name}: output {param.name} must be a device array")
            if out.shape != shape:
                raise ValueError(f"{self.name}: output {param.name} has shape {out.shape}, not {shape}")
        array_params = frozenset(p.name for p, a in zip(self.inputs, args, strict=False)
                                 if not p.raw and isinstance(a, ndarray))  # fmt: skip
        function = self.compiled(types, array_params)
        size = int(numpy.prod(shape))
        call_args, keep = [], []
        for param, arg in zip(self.inputs, args, strict=False):
            call_args.append(self._argument(param, arg, types, shape, keep))
        written = []
        for out in outputs:
            target = out if out.flags.c_contiguous else numpy.empty(out.shape, out.dtype)
            written.append((out, target))
            call_args.append(ctypes.c_void_p(target.ctypes.data))
        call_args.append(ctypes.c_longlong(size))
        from . import launched

        launched(self.name)
        function(*call_args)
        for out, target in written:
            if target is not out:
                numpy.ndarray.__setitem__(out, ..., target)
        return outputs[0] if len(outputs) == 1 else tuple(outputs)

    # ---- checking the arguments as CuPy does ------------------------------------------
    def _placeholder_types(self, args) -> dict:
        """Each type placeholder's dtype, from the arrays declared with it; a scalar
        takes its placeholder's type. A mismatch is CuPy's TypeError."""
        from . import ndarray

        types: dict = {}
        for param, arg in zip(self.inputs + self.outputs, args, strict=False):
            if param.placeholder and isinstance(arg, ndarray):
                if param.type in types and types[param.type] != arg.dtype:
                    raise TypeError(
                        f"Type is mismatched. {param.name} {arg.dtype} {param.type} {types[param.type]}"
                    )
                types[param.type] = arg.dtype
        for param, arg in zip(self.inputs, args, strict=False):
            if param.placeholder and param.type not in types:
                types[param.type] = numpy.asarray(arg).dtype
        return types

    def _argument(self, param, arg, types, shape, keep):
        from . import ndarray

        dtype = numpy.dtype(types[param.type] if param.placeholder else FIXED_TYPES[param.type])
        if isinstance(arg, ndarray):
            array = numpy.ndarray.view(arg, numpy.ndarray).astype(dtype, copy=False)
            if not param.raw:
                array = numpy.broadcast_to(array, shape)
            array = numpy.ascontiguousarray(array)
            keep.append(array)
            return ctypes.c_void_p(array.ctypes.data)
        return CTYPES[dtype.name](dtype.type(arg))

    # ---- the C++ function -----------------------------------------------------------
    def compiled(self, types: dict, array_params: frozenset):
        """The C++ function for these placeholder dtypes, with these non-raw inputs
        arrays (the others scalars), compiled once."""
        key = (tuple(sorted((t, numpy.dtype(d).name) for t, d in types.items())), array_params)
        if key not in self._compiled:
            function = _compile(self.source(types, array_params), self.name)
            function.restype = None
            self._compiled[key] = function
        return self._compiled[key]

    def source(self, types: dict, array_params: frozenset) -> str:
        """The C++ translation unit for these placeholder dtypes and array inputs: the
        body run for every element ``i`` in turn, on the CPU."""
        params, binds = self._declarations(types, array_params)
        return f"""{CPU_PRELUDE}
{_typedefs(types)}{self.preamble}

extern "C" void {self.name}(
    {", ".join(params + ["const long long _size"])})
{{
    for (long long i = 0; i < _size; i++) {{
        {" ".join(binds)}
{self.body}
    }}
}}
"""

    def cuda_source(self, types: dict, array_params: frozenset) -> str:
        """The same kernel as CUDA source, wrapped as CuPy wraps an ElementwiseKernel:
        typedefs for the type placeholders, the preamble, then one ``__global__``
        function whose threads run the body for elements ``i`` of a grid-stride loop,
        raw arrays indexed by hand, the others bound to element ``i``. What NVRTC (or
        a GPU's driver) refuses in it, it refuses in CuPy's too."""
        params, binds = self._declarations(types, array_params)
        return f"""{_typedefs(types)}{self.preamble}

extern "C" __global__ void {self.name}(
    {", ".join(params + ["const long long _size"])})
{{
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < _size;
         i += (long long)blockDim.x * gridDim.x) {{
        {" ".join(binds)}
{self.body}
    }}
}}
"""

    def _declarations(self, types, array_params) -> tuple[list[str], list[str]]:
        """The function's parameters, and the lines that bind element ``i`` to names."""
        params, binds = [], []
        for p in self.inputs:
            ctype = p.type if p.placeholder else C_TYPES[p.type]
            if p.raw:
                params.append(f"const {ctype}* __restrict__ {p.name}")
            elif p.name in array_params:
                params.append(f"const {ctype}* __restrict__ _{p.name}")
                binds.append(f"const {ctype} {p.name} = _{p.name}[i];")
            else:
                params.append(f"const {ctype} {p.name}")
        for p in self.outputs:
            ctype = p.type if p.placeholder else C_TYPES[p.type]
            params.append(f"{ctype}* __restrict__ _{p.name}")
            binds.append(f"{ctype} &{p.name} = _{p.name}[i];")
        return params, binds


def _typedefs(types: dict) -> str:
    return "".join(f"typedef {C_TYPES[numpy.dtype(d).name]} {t};\n" for t, d in sorted(types.items()))


def _compile(source: str, name: str):
    """The shared library of ``source`` (g++, cached by the source's hash), its ``name``."""
    digest = hashlib.sha256(source.encode()).hexdigest()[:20]
    library = CACHE / f"{name}-{digest}.so"
    if not library.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        cpp = CACHE / f"{name}-{digest}.cpp"
        cpp.write_text(source)
        temporary = library.with_suffix(f".{os.getpid()}.tmp")
        done = subprocess.run(
            ["g++", "-O2", "-shared", "-fPIC", "-std=c++17", "-o", str(temporary), str(cpp)],
            capture_output=True, text=True,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"g++ could not compile kernel {name}:\n{done.stderr}\n{source}")
        os.replace(temporary, library)
    return getattr(ctypes.CDLL(str(library)), name)
