"""The HTTP plumbing the fakes share: a threaded server on 127.0.0.1:0, JSON answers, a request log.

A fake subclasses :class:`FakeServer` (its state, its helpers) and :class:`JsonHandler` (its
routes); what a fake answers stays in the fake. ``close()`` refuses connections from then on,
like a network outage: each request has a connection of its own (HTTP/1.0), so no client keeps
talking to a stopped fake over a kept-alive socket.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit


class JsonHandler(BaseHTTPRequestHandler):
    """One request to ``owner``, the fake that serves it (set per server by :class:`FakeServer`)."""

    owner: Any
    protocol_version = "HTTP/1.0"  # one request per connection: close() really cuts clients off

    def log_message(self, format: str, *args: Any) -> None:  # keep pytest output clean
        pass

    def _json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _split(self) -> tuple[str, dict[str, str]]:
        """The path and the query (the last value of each parameter)."""
        parts = urlsplit(self.path)
        return parts.path, {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""


class FakeServer:
    """Serves ``handler`` (the fake's routes) on 127.0.0.1, a free port, in a thread from
    construction until ``close()``.

    ``requests`` is the log of what the fake received (each fake records its own kind of entry
    with :meth:`record`); ``_lock`` guards it and the fake's state across the server's threads.
    """

    def __init__(self, handler: type[JsonHandler]) -> None:
        self.requests: list[Any] = []
        self._lock = threading.RLock()
        handler = type(handler.__name__, (handler,), {"owner": self})  # the server's own: it knows its fake
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        # a short poll interval makes close() (and so every test teardown) quick
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.02,), daemon=True)
        self._thread.start()
        self._closed = False

    def record(self, request: Any) -> Any:
        with self._lock:
            self.requests.append(request)
        return request

    def close(self) -> None:
        """Stop serving: from now on connections are refused, like a network outage."""
        if self._closed:
            return
        self._closed = True
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
