"""The chapter's pages, run two ways: as scripts and as Jupyter notebooks.

Each file in ``examples/`` is one section of the book, written in jupytext's percent
format: ``# %%`` starts a code cell, ``# %% [markdown]`` a cell of text. Python runs it
top to bottom as a script (``python examples/lenet.py``); ``make notebooks`` builds
``notebooks/7.6_lenet.ipynb`` from the same file and runs it on a Jupyter kernel. The
little that differs between the two ways lives here, in :class:`Page`:

==================  ===============================  ===================================
                    in a notebook                    as a script
==================  ===============================  ===================================
pictures            inline, under the cell           written as PNG files with ``--plot``
training            the page's short recipe, with    only with ``--train``; ``--epochs``,
                    tqdm's notebook progress bar     ``--limit``, ``--size`` change it
the backend         cupy where a GPU works, else the default (numba, or numpy)
==================  ===============================  ===================================
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from . import backend as _backend
from . import models


def in_notebook() -> bool:
    """True under a Jupyter kernel (not in a terminal's IPython, not in a script)."""
    if "IPython" not in sys.modules:
        return False
    from IPython import get_ipython

    shell = get_ipython()
    return shell is not None and "IPKernelApp" in shell.config


@dataclass
class Run:
    """What :meth:`Page.train` leaves for the cells after it: the run's history, its
    folder and the test images it was measured on."""

    history: object
    out: Path
    test_iter: object


class Page:
    """One section of the chapter, run as a script or in a notebook.

    ``model`` names the network the page builds (``mc.models``' name for it): it gives
    the page the book's resolution, a ``--size`` option and the ``--train`` options.
    ``options`` adds the page's own, as ``{"--ratio": dict(type=int, default=4)}``; in a
    notebook every option keeps its default (``page.args``)."""

    def __init__(self, description: str, model: str | None = None, options: dict | None = None):
        self.description, self.model = description, model
        self.notebook = in_notebook()
        parser = self._parser(options or {})
        self.args = parser.parse_args([] if self.notebook else None)
        self.network = models.get(model) if model else None
        if self.network is not None and self.args.size is not None:
            try:
                self.network.check_input(_empty_batch(self.network, self.args.size))
            except ValueError as error:
                parser.error(f"argument --size: {error}")

    def _parser(self, options: dict) -> argparse.ArgumentParser:
        parser = argparse.ArgumentParser(description=self.description)
        parser.add_argument("--plot", action="store_true", help="also write the pictures as PNG files")
        parser.add_argument("--out", default=".", help="folder for the pictures (default: here)")
        if self.model:
            parser.add_argument("--size", type=int, help="input height and width (default: the book's)")
            parser.add_argument("--train", action="store_true", help="train the network (the page's recipe)")
            parser.add_argument("--epochs", type=int, help="with --train: this many epochs")
            parser.add_argument("--limit", type=int, help="with --train: only the first LIMIT images")
            parser.add_argument("--overwrite", action="store_true",
                                help="with --train: replace the run that runs/MODEL/ holds")  # fmt: skip
        for flag, settings in options.items():
            parser.add_argument(flag, **settings)
        return parser

    # ---- what the page's cells call ------------------------------------------------
    @property
    def size(self) -> int:
        """The input side: ``--size``, else the book's resolution for the page's network."""
        return self.args.size or self.network.resolution

    def walk_through(self, net, size: int | None = None) -> None:
        """The book's loop (D2L 7.6): one random image through the network's top-level
        blocks, printing each block's output shape::

            for layer in net:
                X = layer(X)
                print(layer.__class__.__name__, "output shape:\t", X.shape)

        in eval mode and without a graph (batch norm in training would need more than
        one value per channel)."""
        import numpy

        from .tensor import no_grad, tensor

        size = size or self.size
        X = tensor(numpy.random.default_rng(0).random((1, 1, size, size), dtype=numpy.float32))
        net.eval()
        with no_grad():
            for layer in net:
                X = layer(X)
                print(layer.__class__.__name__, "output shape:\t", X.shape)

    def choose_backend(self, name: str | None = None) -> str:
        """Make ``name`` the active backend and say which one computes; by default
        ``cupy`` where a GPU works here, else the default CPU backend (numba, or numpy
        where Numba is missing). A backend that cannot run here is one line saying why,
        and the page goes on with the default. ``MINICNN_BACKEND`` wins when set."""
        if name is None:
            if os.environ.get("MINICNN_BACKEND"):
                name = os.environ["MINICNN_BACKEND"]
            elif "cupy" in _backend.available_backends():
                name = "cupy"
        if name is not None:
            reason = _backend.unavailable_reason(name)
            if reason:
                print(f"backend {name!r} is not available here: {reason}")
            else:
                _backend.use_backend(name)
        active = _backend.current_backend()
        print(f"minicnn computes on {active.name} ({active.device})")
        return active.name

    def show(self, figure, name: str) -> None:
        """Show ``figure`` under the cell in a notebook; as a script, write it to
        OUT/NAME.png when ``--plot`` is given."""
        if self.notebook:
            from IPython.display import display

            display(figure)
        elif self.args.plot:
            from .viz._figure import finish

            path = Path(self.args.out) / f"{name}.png"
            finish(figure, path)  # written as every picture is: whole, or not at all
            print(f"wrote {path}")

    def train(
        self, net, *, lr, batch_size, num_epochs, resize=None, limit=None, optimizer="sgd",
        out=None,
    ) -> Run | None:  # fmt: skip
        """Train ``net`` on Fashion-MNIST with this recipe, into ``out`` (default
        ``runs/MODEL/``; a notebook replaces the run it holds, since running a cell again
        is what notebooks are for; a script, only with ``--overwrite``), and show
        the book's curves: always in a notebook, with ``--train`` as a script (where
        ``--epochs``, ``--limit`` and ``--size`` change the recipe). Returns the
        :class:`Run`, or ``None`` when nothing was trained. Missing data files are one
        message saying how to get them, not a traceback."""
        from . import data, train, viz

        if not (self.notebook or self.args.train):
            return None
        args = self.args
        num_epochs = args.epochs or num_epochs
        limit = args.limit or limit
        resize = args.size or resize
        out = Path(out or Path("runs") / self.model)
        try:
            history = train.train_recipe(
                self.model, epochs=num_epochs, lr=lr, batch_size=batch_size, resize=resize,
                limit=limit, seed=0, out=out, net=net, optimizer=optimizer,
                overwrite=self.notebook or args.overwrite,
            )  # fmt: skip
            test_set = data.FashionMNIST(train=False)  # the images the run was measured on
            test_iter = data.DataLoader(test_set, batch_size, resize=resize, limit=limit)
        except train.RunExistsError as error:  # a script, without --overwrite
            raise SystemExit(f"{error.folder} holds {error.holds}: --overwrite replaces it") from None
        except FileNotFoundError as error:
            if not self.notebook:
                raise SystemExit(f"{self.model}: {error}") from None
            print(error)
            return None
        self.show(viz.curves(history), "curves")
        return Run(history, out, test_iter)


def _empty_batch(network, side: int):
    import numpy

    return numpy.empty((1, network.in_channels, side, side), numpy.float32)  # one image
