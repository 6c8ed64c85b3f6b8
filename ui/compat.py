"""Work-arounds for bugs in our GUI dependencies, applied once on import.

PySide6/shiboken6 6.12.0 on CPython 3.11 drops one reference to ``None`` on every call of a
method returning ``void`` (``processEvents``, ``setObjectName``, ``QTimer.start``, ...): the
binding assumes ``None`` is immortal, which it only is from CPython 3.12. After a few
thousand such calls the interpreter aborts with "none_dealloc: deallocating None". Giving
``None`` a practically infinite reference count makes it immortal here as well; on 3.12+
this is a no-op. Remove once PySide6 is pinned to a fixed release.
"""

from __future__ import annotations

import ctypes
import sys

_PAD = 1 << 40  # ~10^12 leaked references before it could matter


def make_none_immortal() -> bool:
    """Apply the fix on CPython < 3.12 (idempotent); True when it was needed."""
    if sys.implementation.name != "cpython" or sys.version_info >= (3, 12):
        return False
    if sys.getrefcount(None) > _PAD // 2:
        return True
    ctypes.c_ssize_t.from_address(id(None)).value += _PAD
    return True


make_none_immortal()
