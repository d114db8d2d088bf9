"""Fails at import time, as a function with a missing dependency does."""

import module_that_is_not_packaged  # noqa: F401


def handler(event, context):
    return "unreachable"
