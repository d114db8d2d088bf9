"""Fill the state machine's ``${Placeholder}`` ARNs.

A regex over ``${Name}`` rather than ``string.Template``: Template treats ``$$``
as an escaped ``$`` and would turn the context path ``$$.Task.Token`` into
``$.Task.Token``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")


def placeholders(definition: str) -> set[str]:
    return set(PLACEHOLDER.findall(definition))


def fill(definition: str, values: Mapping[str, str]) -> str:
    missing = placeholders(definition) - set(values)
    if missing:
        raise ValueError(f"no value for placeholders: {', '.join(sorted(missing))}")
    return PLACEHOLDER.sub(lambda match: values[match.group(1)], definition)
