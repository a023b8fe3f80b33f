"""A real local HTTP receiver for tests of what the project sends out (webhooks, traces): a threaded stdlib
server on a free loopback port, answering each POST with what ``answer`` returns for its headers and body."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Answer = Callable[[Any, bytes], int]


@contextlib.contextmanager
def receiving(answer: Answer) -> Iterator[str]:
    """The receiver's base URL (http://127.0.0.1:PORT) while the block runs; stopped after it."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            code = answer(self.headers, self.rfile.read(int(self.headers.get("Content-Length", 0))))
            self.send_response(code)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
