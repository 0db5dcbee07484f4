"""Which gradients a leaf may keep without a copy: the fast backends' ``adopt_grad``.

Backward computes a gradient for each leaf; the leaf keeps it as ``.grad``. The
reference backend always keeps a copy, since one array may reach several leaves
(``a + b`` hands the same dy to both) or be a view of another (a broadcast). A copy of
every weight gradient costs a fast step real time (AlexNet's first Linear layer: 150 MB
a step), so the fast backends keep the array itself when its memory is its own (not a
view; or the very array the buffer pool handed out, engine_room/allocator.py) and no leaf
has kept it before. Only a second leaf given the same array gets a copy.
"""

from __future__ import annotations

import weakref


class Adoptions:
    """The arrays leaves have kept as their gradients, remembered while they live."""

    def __init__(self, owns_memory):
        self._owns_memory = owns_memory  # array -> whether no other array shares its memory
        self._kept: dict[int, weakref.ref] = {}

    def adopt(self, array):
        """``array`` itself the first time it is adopted, if its memory is its own; else a copy."""
        key = id(array)
        kept = self._kept.get(key)
        if (kept is not None and kept() is array) or not self._owns_memory(array):
            return array.copy()
        try:
            self._kept[key] = weakref.ref(array, lambda _, key=key: self._forget(key))
        except TypeError:  # an array type without weak references: always copy
            return array.copy()
        return array

    def _forget(self, key: int) -> None:
        kept = self._kept.get(key)
        if kept is not None and kept() is None:
            del self._kept[key]
