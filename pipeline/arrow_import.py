"""Import Arrow for a short command that needs no NumPy.

``pyarrow`` runs without NumPy (it imports it only if it can), and importing
NumPy is most of the cost of importing Arrow. A command that reads a few rows
into Python values, such as ``trialproof prove``, calls
:func:`import_arrow_without_numpy` before its first Arrow import. The process
then cannot convert Arrow data to NumPy or pandas: call it only in a process
that never does.
"""

from __future__ import annotations

__all__ = ["import_arrow_without_numpy"]

import importlib
import sys

#: The Arrow modules such a command uses.
ARROW_MODULES = ("pyarrow", "pyarrow.compute", "pyarrow.parquet")


def import_arrow_without_numpy() -> None:
    """Import :data:`ARROW_MODULES` with NumPy hidden from them; nothing if either is loaded."""
    if "pyarrow" in sys.modules or "numpy" in sys.modules:
        return
    sys.modules["numpy"] = None  # type: ignore[assignment]  # makes `import numpy` fail
    try:
        for name in ARROW_MODULES:
            importlib.import_module(name)
    finally:
        if sys.modules.get("numpy", 0) is None:
            del sys.modules["numpy"]
