"""Sleeps for event["seconds"], to exceed the function's timeout."""

import os
import time


def handler(event, context):
    print("sleeping", event.get("seconds", 0))
    time.sleep(event.get("seconds", 0))
    return {"slept": event.get("seconds", 0), "pid": os.getpid()}
