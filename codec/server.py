"""A codec server, so an authorised operator reads encrypted payloads in the Temporal UI.

``POST /decode`` and ``POST /encode`` take and return ``{"payloads": [...]}`` in protobuf JSON, as the UI
sends them. Every POST must carry the token COMPLAINTS_CODEC_TOKEN: as ``Authorization: Bearer <token>``
(tools, or a UI with SSO that passes its token), or as a capability path prefix ``/t/<token>/decode`` for a
UI without login, like the embedded one (`make up` configures its endpoint so). Anything else is 401.
CORS answers the UI's preflight for the allowed origins (COMPLAINTS_CODEC_CORS_ORIGINS).

Standard library only: an operator's UI makes a handful of requests, and nothing here needs more.
"""

from __future__ import annotations

import hmac
import json
import os
import secrets
import signal
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType

from google.protobuf import json_format
from temporalio.api.common.v1 import Payloads

from codec.encryption import EncryptionCodec, UnknownKey
from logs import configure, get_logger

log = get_logger(__name__)
TOKEN_ENV = "COMPLAINTS_CODEC_TOKEN"
ORIGINS_ENV = "COMPLAINTS_CODEC_CORS_ORIGINS"
DEFAULT_ORIGINS = ("http://127.0.0.1:8233", "http://localhost:8233")


def new_codec_token() -> str:
    return secrets.token_urlsafe(24)


def _handler(codec: EncryptionCodec, token: str, origins: frozenset[str]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "complaints-codec"

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
            pass  # paths may hold the token: requests are logged below, by endpoint only

        def _cors(self) -> None:
            origin = self.headers.get("Origin")
            if origin and origin in origins:
                self.send_header("Access-Control-Allow-Origin", origin)
                self.send_header("Access-Control-Allow-Credentials", "true")
                self.send_header("Access-Control-Allow-Headers", "content-type,x-namespace,authorization")
                self.send_header("Access-Control-Allow-Methods", "POST, GET, OPTIONS")
                self.send_header("Vary", "Origin")

        def _reply(self, status: int, body: dict[str, object] | str) -> None:
            data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
            self.send_response(status)
            self._cors()
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _endpoint(self) -> tuple[str, bool]:
            """The endpoint asked for, and whether the request carries the token."""
            path = self.path.split("?", 1)[0]
            bearer = self.headers.get("Authorization", "")
            authorised = bearer.startswith("Bearer ") and hmac.compare_digest(bearer[7:].encode(), token.encode())
            if path.startswith("/t/"):
                given, _, rest = path[3:].partition("/")
                authorised = authorised or hmac.compare_digest(given.encode(), token.encode())
                path = "/" + rest
            return path.rstrip("/") or "/", authorised

        def do_OPTIONS(self) -> None:  # noqa: N802 - http.server's naming
            self.send_response(200)
            self._cors()
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_GET(self) -> None:  # noqa: N802
            endpoint, _ = self._endpoint()
            if endpoint == "/health":
                self._reply(200, {"ok": True, "keys": len(codec.key_ids)})
            else:
                self._reply(404, {"error": "not found"})

        def do_POST(self) -> None:  # noqa: N802
            endpoint, authorised = self._endpoint()
            if endpoint not in ("/encode", "/decode"):
                self._reply(404, {"error": "not found"})
                return
            if not authorised:
                log.warning("codec request refused: no valid token", endpoint=endpoint)
                self._reply(401, {"error": "a valid token is required"})
                return
            try:
                length = int(self.headers.get("Content-Length", "0"))
                payloads = json_format.Parse(self.rfile.read(length), Payloads())
                convert = codec.decode_one if endpoint == "/decode" else codec.encode_one
                result = Payloads(payloads=[convert(p) for p in payloads.payloads])
            except UnknownKey as error:
                log.warning("codec request refused: unknown key", endpoint=endpoint, key_id=error.key_id)
                self._reply(400, {"error": str(error), "key_id": error.key_id})
                return
            except (ValueError, json_format.ParseError) as error:
                self._reply(400, {"error": str(error)[:300]})
                return
            log.info("codec request", endpoint=endpoint, payloads=len(result.payloads),
                     namespace=self.headers.get("X-Namespace"))
            self._reply(200, json_format.MessageToJson(result))

    return Handler


@dataclass
class CodecServer:
    """A running codec server: ``url`` is where the UI (or ``temporal --codec-endpoint``) points."""

    server: ThreadingHTTPServer
    thread: threading.Thread
    host: str
    token: str = field(repr=False)

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ui_endpoint(self) -> str:
        """The endpoint for a UI that cannot send the token itself: the token as a capability path."""
        return f"{self.url}/t/{self.token}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)

    def __enter__(self) -> CodecServer:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


def start_codec_server(codec: EncryptionCodec, token: str, host: str = "127.0.0.1", port: int = 0,
                       origins: Iterable[str] = DEFAULT_ORIGINS) -> CodecServer:
    if not token:
        raise ValueError(f"{TOKEN_ENV} must be set: the codec server refuses every request without it")
    server = ThreadingHTTPServer((host, port), _handler(codec, token, frozenset(origins)))
    thread = threading.Thread(target=server.serve_forever, name="codec-server", daemon=True)
    thread.start()
    return CodecServer(server, thread, host, token)


def main() -> None:
    configure()
    codec = EncryptionCodec.from_env()
    if codec is None:
        raise SystemExit("COMPLAINTS_CODEC_KEYS is not set: nothing to decode with")
    origins = [o.strip() for o in os.environ.get(ORIGINS_ENV, ",".join(DEFAULT_ORIGINS)).split(",") if o.strip()]
    running = start_codec_server(codec, os.environ.get(TOKEN_ENV, ""),
                                 os.environ.get("COMPLAINTS_CODEC_HOST", "127.0.0.1"),
                                 int(os.environ.get("COMPLAINTS_CODEC_PORT", "8081")), origins)
    log.info("codec server started", url=running.url, keys=len(codec.key_ids), origins=origins)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    running.stop()
    log.info("codec server stopped")


if __name__ == "__main__":
    main()
