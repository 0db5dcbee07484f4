"""Switches that change how minicnn computes, not what.

``conv_off``: the engine room's conv2d algorithms turned off, by switch name
("winograd", "direct", "taps", "dx_by_conv", "wide_rows", "im2col"; the table and what
each row computes are in engine_room/conv.py). Each layer then takes the first row of
the table that is still on and applies to its shape. For a whole run, the environment
variable ``MINICNN_CONV_OFF=winograd,taps``::

    >>> mc.config.conv_off = {"winograd"}
    >>> with mc.config.turned_off("winograd", "taps"):   # just here
    ...     y = net(X)

``reference``: every switch off. Every layer then computes the chapter's algorithm on
every backend, CPU or GPU, with functional/conv.py's loop (conv2d as im2col and a
matrix product, its backward as col2im). The results agree with the engine room's up to
rounding; the tests hold them equal. For a whole run, ``MINICNN_REFERENCE=1``::

    >>> mc.config.reference = True
    >>> with mc.config.using_reference():      # just here
    ...     y = net(X)
"""

from __future__ import annotations

import contextlib
import os


def _from_environment() -> bool:
    value = os.environ.get("MINICNN_REFERENCE", "").strip().lower()
    if value in ("", "0", "false", "no", "off"):
        return False
    if value in ("1", "true", "yes", "on"):
        return True
    raise ValueError(
        f"environment variable MINICNN_REFERENCE must be 1 or 0 (true/false, yes/no, "
        f"on/off), got {os.environ['MINICNN_REFERENCE']!r}"
    )


def _switches_from_environment() -> frozenset[str]:
    """MINICNN_CONV_OFF's names, comma-separated (checked against the table when a layer
    is first planned: engine_room/conv.py names the switches)."""
    value = os.environ.get("MINICNN_CONV_OFF", "")
    return frozenset(name.strip() for name in value.split(",") if name.strip())


reference: bool = _from_environment()
conv_off: frozenset[str] = _switches_from_environment()


@contextlib.contextmanager
def using_reference(on: bool = True):
    """``reference = on`` inside the ``with`` block, restored after it."""
    global reference
    previous, reference = reference, bool(on)
    try:
        yield
    finally:
        reference = previous


def check_switches(switches=None, where: str = "mc.config.conv_off (or MINICNN_CONV_OFF)") -> None:
    """Raise ValueError naming every switch in ``switches`` (by default ``conv_off``) that
    no row of conv2d's table has (engine_room/conv.py), and the switches there are."""
    from .engine_room.conv import SWITCHES

    unknown = sorted(set(conv_off if switches is None else switches) - SWITCHES)
    if unknown:
        raise ValueError(
            f"{where}: no conv2d algorithm has the switch {', '.join(map(repr, unknown))}; "
            f"the switches are {', '.join(sorted(SWITCHES))}"
        )


@contextlib.contextmanager
def turned_off(*switches: str):
    """The conv2d algorithms of these switches off inside the ``with`` block, as well as
    those already off; ``conv_off`` restored after it."""
    check_switches(switches, "mc.config.turned_off")
    global conv_off
    previous, conv_off = conv_off, frozenset(conv_off) | frozenset(switches)
    try:
        yield
    finally:
        conv_off = previous
