"""Memoising a pure LocalStack function in place, once however often the plugin installs it."""

from __future__ import annotations

import functools
from typing import Any

_CACHED = "_localcloud_cached"


def is_cached(function: Any) -> bool:
    return bool(getattr(function, _CACHED, False))


def cached(function: Any, maxsize: int) -> Any:
    """`function` with its answers kept per distinct arguments (up to `maxsize` of them)."""
    memoised = functools.lru_cache(maxsize=maxsize)(function)
    setattr(memoised, _CACHED, True)
    return memoised
