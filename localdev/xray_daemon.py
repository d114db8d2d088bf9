"""A stand-in for the X-Ray daemon: it receives what the functions really send, and keeps it.

The X-Ray SDK in each function, and the local Lambda executor for each invoke, send segments as
UDP datagrams (a JSON header line, then the document) to ``AWS_XRAY_DAEMON_ADDRESS`` (default
127.0.0.1:2000); LocalStack's open-source edition has no X-Ray API, so the trace test and the
tracing benchmark listen there instead.
"""

from __future__ import annotations

import json
import os
import socket
import threading
from collections.abc import Iterable
from types import TracebackType
from typing import Any

DEFAULT_ADDRESS = "127.0.0.1:2000"


def daemon_address() -> tuple[str, int]:
    """Where the local cloud's functions send segments (the same variable they read)."""
    host, _, port = (os.environ.get("AWS_XRAY_DAEMON_ADDRESS") or DEFAULT_ADDRESS).rpartition(":")
    return host or "127.0.0.1", int(port)


def every_entity(documents: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each document and every subsegment nested in it, each naming its parent (``parent_id``):
    the functions send a step or a record with its subsegments inside one document
    (chalicelib/tracing.py's ``WholeWorkStreaming``), the SDK elsewhere one per subsegment."""
    found = []
    for document in documents:
        found.append(document)
        found.extend(every_entity(document.get("subsegments") or []))
    return found


class XrayDaemon:
    """Listens on the daemon address from creation until ``close``; every document received is
    in ``documents``, and the size of the datagram that brought it in ``sizes``."""

    def __init__(self) -> None:
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.socket.bind(daemon_address())  # OSError if another listener has it
        self.socket.settimeout(0.2)
        self.documents: list[dict[str, Any]] = []
        self.sizes: list[int] = []  # each document's datagram, in bytes
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._receive, daemon=True)
        self._thread.start()

    def _receive(self) -> None:
        while not self._stop.is_set():
            try:
                datagram = self.socket.recv(65535)
            except TimeoutError:
                continue
            header, _, body = datagram.decode().partition("\n")
            with self._lock:
                if json.loads(header).get("format") == "json":
                    self.documents.append(json.loads(body))
                    self.sizes.append(len(datagram))

    def take(self) -> list[tuple[dict[str, Any], int]]:
        """What arrived since the last take: each document with its datagram's size; then
        forget it."""
        with self._lock:
            taken = list(zip(self.documents, self.sizes, strict=True))
            self.documents, self.sizes = [], []
        return taken

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.socket.close()

    def __enter__(self) -> XrayDaemon:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()
