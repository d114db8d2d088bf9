"""Chalice blueprints: they translate requests and messages into steps, and nothing more."""
