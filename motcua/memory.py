"""Give the C heap's free pages back to the system once a service has started.

Start-up (imports, building the config models, the first queries) frees a lot of small blocks that
glibc keeps for reuse inside its heap; a service that then idles for hours never needs most of them.
`malloc_trim(0)` returns the free pages (a few MB per process on a Pi that has no memory to spare).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import gc


def release_free_memory() -> None:
    """Collect garbage, then hand the heap's free pages back (glibc only; elsewhere nothing happens)."""
    gc.collect()
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        trim = libc.malloc_trim if libc is not None else None
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to trim
        return
    if trim is not None:
        trim(0)
