"""The benchmark tools' comma-separated choices (``--flows``, ``--tracers``), checked alike."""

from __future__ import annotations

import argparse
from collections.abc import Iterable


def listed(
    parser: argparse.ArgumentParser, text: str, known: Iterable[str], what: str
) -> list[str]:
    """The names in ``text``, each one of ``known``; otherwise the parser's usage error."""
    names = [name for name in text.split(",") if name]
    if unknown := set(names) - set(known):
        parser.error(f"unknown {what} {sorted(unknown)}; choose from {list(known)}")
    return names
