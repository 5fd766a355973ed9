"""File input/output: camera stacks, localization tables, ground-truth emitter files, atomic writes."""

from __future__ import annotations

import importlib
from typing import Any

_API = {
    "Stack": ".stacks",
    "read_stack": ".stacks",
    "write_stack": ".stacks",
    "DEFAULT_PIXEL_SIZE_NM": "..geometry",
    "read_table": ".tables",
    "write_table": ".tables",
    "read_emitters": ".emitters",
    "write_emitters": ".emitters",
    "atomic_path": ".atomic",
}
__all__ = list(_API)


def __getattr__(name: str) -> Any:
    if name in _API:
        return getattr(importlib.import_module(_API[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
