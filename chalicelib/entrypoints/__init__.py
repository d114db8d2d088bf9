"""Chalice blueprints: they translate requests and messages into steps, and nothing more.

Lambda imports a blueprint's module directly (``chalicelib.entrypoints.choreography.
restaurant_notifier``), not ``app.py``, so process-wide set-up happens here.
"""

from chalicelib import tracing

tracing.configure()
