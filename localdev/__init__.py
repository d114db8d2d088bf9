"""Shared by the tools and the tests to drive a running system: orders API client, chalice local."""
