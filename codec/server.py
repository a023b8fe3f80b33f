"""A codec server, so an authorised operator reads encrypted payloads in the Temporal UI.

``POST /decode`` and ``POST /encode`` take and return ``{"payloads": [...]}`` in protobuf JSON, as the UI
sends them. Every POST must carry a credential, as ``Authorization: Bearer <credential>`` (the scheme in any
case), where the credential is either

- the shared token COMPLAINTS_CODEC_TOKEN (tools: the ``temporal`` CLI, a TypeScript backend), or
- a JWT from an issuer in COMPLAINTS_TRUSTED_ISSUERS, verified as the decision tokens are (what a Temporal
  UI with SSO sends when TEMPORAL_CODEC_PASS_ACCESS_TOKEN=true); its role decides what it may do
  (:data:`ROLES`);

or the shared token as a capability path prefix ``/t/<token>/decode``, for a UI without login like the
embedded one. Anything else is 401; a JWT whose role may not use the endpoint is 403.
CORS answers the UI's preflight for the allowed origins (COMPLAINTS_CODEC_CORS_ORIGINS).

The server bounds what a client can make it hold (see :class:`Limits`): a body over the maximum is refused
with 413 before a byte of it is read; a client has ``timeout`` seconds from connecting to deliver its whole
request, or the connection is dropped; a connection holds a thread only once it has sent something, and at
most ``max_connections`` do at once (beyond that: 503 at once). ``GET /health`` says ``{"ok": true}`` and
nothing else.

Standard library only: an operator's UI makes a handful of requests, and nothing here needs more.
"""

from __future__ import annotations

import contextlib
import hmac
import http.client
import json
import os
import re
import secrets
import selectors
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import BufferedIOBase
from types import TracebackType
from typing import Any, cast

from google.protobuf import json_format
from temporalio.api.common.v1 import Payloads

from codec.encryption import EncryptionCodec, UnknownKey
from domain.principals import Principal, Role
from identity.tokens import TrustedIssuers, Unauthenticated
from logs import configure, get_logger

log = get_logger(__name__)
TOKEN_ENV = "COMPLAINTS_CODEC_TOKEN"
ORIGINS_ENV = "COMPLAINTS_CODEC_CORS_ORIGINS"
MAX_BODY_ENV = "COMPLAINTS_CODEC_MAX_BODY"
MAX_CONNECTIONS_ENV = "COMPLAINTS_CODEC_MAX_CONNECTIONS"
TIMEOUT_ENV = "COMPLAINTS_CODEC_TIMEOUT"
DEFAULT_ORIGINS = ("http://127.0.0.1:8233", "http://localhost:8233")

#: What a JWT's role may do here. Reading personal data is for those who handle or audit complaints;
#: encoding (sealing a payload before it reaches Temporal) for those who start or decide them, an intake
#: backend included. A customer reads their own complaint through the application, never through here.
ROLES: Mapping[str, frozenset[Role]] = {
    "/decode": frozenset({Role.agent, Role.supervisor, Role.auditor}),
    "/encode": frozenset({Role.agent, Role.supervisor, Role.intake}),
}
#: Header bytes a request may carry after its request line (which the standard library caps at 64 KiB).
#: The standard library alone would allow 100 header lines of 64 KiB each: 6.4 MB a connection.
MAX_HEADER_BYTES = 64 * 1024
#: After refusing a request whose body was not read, how much of that body is discarded (and for how long)
#: before closing, so the client sees the answer instead of a connection reset (nginx's lingering close).
LINGER_BYTES = 256 * 1024
LINGER_SECONDS = 0.5


def new_codec_token() -> str:
    return secrets.token_urlsafe(24)


@dataclass(frozen=True)
class Limits:
    """What one client can make the server hold: ``max_body`` bytes of body, ``timeout`` seconds from
    connecting to the end of its request (and for each read or write), one of ``max_connections`` threads."""

    max_body: int = 4 * 1024 * 1024
    max_connections: int = 32
    timeout: float = 5.0

    def __post_init__(self) -> None:
        if self.max_body < 1 or self.max_connections < 1 or not self.timeout > 0:
            raise ValueError(f"codec server limits must be positive: {self}")

    @property
    def max_in_flight(self) -> int:
        """Body bytes being read or converted at once, all connections together: a few bodies of the largest
        size (each costs several times its size while it is parsed, converted and answered), or any number of
        the small ones a UI sends. A request past it is answered 503."""
        return 4 * self.max_body

    @property
    def max_waiting(self) -> int:
        """Connections kept open before they send anything (they cost a socket, not a thread); past this the
        oldest is dropped."""
        return max(64, 8 * self.max_connections)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ, *, max_body: int | None = None,
                 max_connections: int | None = None, timeout: float | None = None) -> Limits:
        """The limits given, else those in the environment, else the defaults."""
        def value(given: float | None, name: str, kind: type[int] | type[float], default: float) -> Any:
            if given is not None:
                return given
            text = environ.get(name, "").strip()
            try:
                return kind(text) if text else default
            except ValueError:
                raise ValueError(f"{name} must be a number, not {text[:40]!r}") from None

        return cls(value(max_body, MAX_BODY_ENV, int, cls.max_body),
                   value(max_connections, MAX_CONNECTIONS_ENV, int, cls.max_connections),
                   value(timeout, TIMEOUT_ENV, float, cls.timeout))


class _HeaderBudget:
    """The connection's reader, letting the headers (after the request line) total at most ``budget`` bytes,
    and noting whether they were cut off; the body is read straight through."""

    def __init__(self, raw: BufferedIOBase, budget: int) -> None:
        self._raw = raw
        self._left = budget
        self._request_line = True
        #: A line ended without its newline: the connection ended (or was ended) mid-headers.
        self.truncated = False

    def readline(self, limit: int = -1) -> bytes:
        if self._request_line:  # capped by http.server itself (414)
            self._request_line = False
            line = self._raw.readline(limit)
        else:
            if self._left <= 0:
                raise http.client.LineTooLong("the request's headers")  # http.server answers 431
            line = self._raw.readline(self._left + 1 if limit < 0 else min(limit, self._left + 1))
            self._left -= len(line)
            if self._left < 0:
                raise http.client.LineTooLong("the request's headers")
        self.truncated = self.truncated or (bool(line) and not line.endswith(b"\n"))
        return line

    def read(self, size: int = -1) -> bytes:
        return self._raw.read(size)

    @property
    def closed(self) -> bool:
        return self._raw.closed

    def close(self) -> None:
        self._raw.close()


class _Tally:
    """Counts an event and logs it at most once a second, so a flood of them is not a flood of lines."""

    def __init__(self, event: str, **fields: object) -> None:
        self.event, self.fields = event, fields
        self.count, self.logged = 0, 0.0
        self._lock = threading.Lock()

    def add(self) -> None:
        with self._lock:
            self.count += 1
            now = time.monotonic()
            if now - self.logged < 1.0:
                return
            count, self.count, self.logged = self.count, 0, now
        log.warning(self.event, count=count, **self.fields)


_BUSY_BODY = b'{"error": "the codec server is busy: try again"}'
_BUSY = (b"HTTP/1.0 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\n"
         b"Connection: close\r\nContent-Length: " + str(len(_BUSY_BODY)).encode() + b"\r\n\r\n" + _BUSY_BODY)


class _BoundedServer(ThreadingHTTPServer):
    """A ThreadingHTTPServer whose connections wait, thread-less, in a *gate* until they have something to
    read; then each takes one of ``max_connections`` slots (a thread), or is answered 503 if none is free.
    A connection whose request has not fully arrived ``timeout`` seconds after it connected is dropped,
    whether it sent nothing, stalled, or trickles a byte at a time (a socket timeout alone would let a
    trickle hold a thread for ever)."""

    daemon_threads = True
    request_queue_size = 128  # the listen backlog: bursts wait in the kernel, not in threads

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], limits: Limits) -> None:
        self.limits = limits
        self._slots = threading.BoundedSemaphore(limits.max_connections)
        self._lock = threading.Lock()
        self._arrivals: list[tuple[socket.socket, Any, float]] = []  # accepted, not yet in the gate
        self._reading: dict[socket.socket, float] = {}  # handed to a thread, request not yet in: deadline
        self._in_flight = 0  # body bytes reserved by the requests being served
        self._stopping = False
        self.busy = _Tally("codec server busy: requests refused", max_connections=limits.max_connections)
        self._late = _Tally("codec connections dropped: request not received in time", timeout=limits.timeout)
        self._wake_r, self._wake_w = socket.socketpair()
        for end in (self._wake_r, self._wake_w):
            end.setblocking(False)
        try:
            super().__init__(address, handler)
        except BaseException:
            self._wake_r.close()
            self._wake_w.close()
            raise
        self._gate = threading.Thread(target=self._watch, name="codec-gate", daemon=True)
        self._gate.start()

    # -- in serve_forever's thread
    def process_request(self, request: Any, client_address: Any) -> None:
        """Hand the accepted connection to the gate (instead of starting a thread for it)."""
        with self._lock:
            self._arrivals.append((request, client_address, time.monotonic() + self.limits.timeout))
        self._wake()

    # -- in the gate's thread
    def _watch(self) -> None:
        waiting: dict[socket.socket, tuple[Any, float]] = {}  # insertion order: oldest first
        with selectors.DefaultSelector() as selector:
            selector.register(self._wake_r, selectors.EVENT_READ)
            while not self._stopping:
                try:
                    self._step(selector, waiting)
                except Exception as error:  # noqa: BLE001 - the gate must outlive any one connection
                    log.error("codec gate error", error=type(error).__name__)
                    time.sleep(0.05)
            for sock in list(waiting):
                self._drop(selector, waiting, sock)

    def _drop(self, selector: selectors.BaseSelector, waiting: dict[socket.socket, Any], sock: socket.socket) -> None:
        selector.unregister(sock)
        del waiting[sock]
        self.shutdown_request(sock)

    def _step(self, selector: selectors.BaseSelector, waiting: dict[socket.socket, tuple[Any, float]]) -> None:
        """Take in new connections, hand those with something to read to a thread, drop the overdue."""
        with self._lock:
            arrivals, self._arrivals = self._arrivals, []
        for sock, address, deadline in arrivals:
            if len(waiting) >= self.limits.max_waiting:
                self._drop(selector, waiting, next(iter(waiting)))
            waiting[sock] = (address, deadline)
            selector.register(sock, selectors.EVENT_READ)
        with self._lock:
            deadlines = [d for _, d in waiting.values()] + list(self._reading.values())
        pause = min(deadlines, default=time.monotonic() + 1.0) - time.monotonic()
        for key, _ in selector.select(max(0.0, min(pause, 1.0))):
            if key.fileobj is self._wake_r:
                with contextlib.suppress(OSError):
                    while self._wake_r.recv(4096):
                        pass
                continue
            sock = cast(socket.socket, key.fileobj)
            selector.unregister(sock)
            address, deadline = waiting.pop(sock)
            self._admit(sock, address, deadline)
        now = time.monotonic()
        for sock in [s for s, (_, deadline) in waiting.items() if deadline <= now]:
            self._drop(selector, waiting, sock)
            self._late.add()
        with self._lock:
            for sock in [s for s, deadline in self._reading.items() if deadline <= now]:
                # Ends the handler's blocked read; the handler closes the socket (under this lock, so the
                # descriptor is never reused while we hold it).
                del self._reading[sock]
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                self._late.add()

    def _admit(self, sock: socket.socket, address: Any, deadline: float) -> None:
        if not self._slots.acquire(blocking=False):
            self.busy.add()
            with contextlib.suppress(OSError):
                sock.setblocking(False)
                # Read what it sent (closing over unread bytes resets the connection, and the client could
                # lose the answer), then answer without a thread.
                with contextlib.suppress(OSError):
                    sock.recv(65536)
                sock.send(_BUSY)
            self.shutdown_request(sock)
            return
        with self._lock:
            self._reading[sock] = deadline
        try:
            super().process_request(sock, address)  # ThreadingMixIn: its thread
        except Exception as error:  # noqa: BLE001 - no thread to be had: refuse this one, keep serving
            log.error("codec server could not start a thread", error=type(error).__name__)
            self._slots.release()
            self.shutdown_request(sock)

    # -- in the connection's thread
    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def reserve(self, size: int) -> bool:
        """Take ``size`` bytes of the in-flight body budget, if it has them (give them back with :meth:`free`)."""
        with self._lock:
            if self._in_flight + size > self.limits.max_in_flight:
                return False
            self._in_flight += size
            return True

    def free(self, size: int) -> None:
        with self._lock:
            self._in_flight -= size

    def received(self, request: Any) -> None:
        """The request has arrived in full (or been answered): its deadline no longer applies."""
        with self._lock:
            self._reading.pop(request, None)

    def shutdown_request(self, request: Any) -> None:
        with self._lock:
            self._reading.pop(request, None)
            super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that resets or vanishes is routine; neither its address nor a traceback (whose text could
        # quote a payload) belongs in the log.
        error = sys.exc_info()[1]
        if isinstance(error, OSError):
            log.info("codec connection ended early", error=type(error).__name__)
        else:
            log.error("codec request failed", error=type(error).__name__)

    # -- in the thread that stops the server
    def _wake(self) -> None:
        with contextlib.suppress(OSError):  # full: the gate is awake already
            self._wake_w.send(b"\0")

    def server_close(self) -> None:
        self._stopping = True
        self._wake()
        if threading.current_thread() is not self._gate:
            self._gate.join(5)
        super().server_close()
        with self._lock:
            arrivals, self._arrivals = self._arrivals, []
        for sock, _, _ in arrivals:
            self.shutdown_request(sock)
        self._wake_r.close()
        self._wake_w.close()


def _same(given: str, token: str) -> bool:
    """Whether ``given`` is the shared token, in constant time; never true when there is no shared token."""
    return bool(token) and hmac.compare_digest(given.encode(), token.encode())


@dataclass(frozen=True)
class _Refusal:
    status: int
    error: str
    reason: str  # for the log: never the credential, never who it names
    fields: dict[str, object] = field(default_factory=dict)


_LENGTH = re.compile(r"[0-9]{1,18}")


def _handler(codec: EncryptionCodec, token: str, origins: frozenset[str], issuers: TrustedIssuers,
             limits: Limits) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "complaints-codec"
        # Each read and write on the connection waits at most this long (StreamRequestHandler sets it on the
        # socket); the gate bounds the whole request to the same time from connecting.
        timeout = limits.timeout
        server: _BoundedServer

        def setup(self) -> None:
            super().setup()
            self._headers_in = _HeaderBudget(self.rfile, MAX_HEADER_BYTES)
            self.rfile = cast(BufferedIOBase, self._headers_in)  # http.server only reads lines and bytes of it

        def parse_request(self) -> bool:
            if not super().parse_request():
                return False
            if self._headers_in.truncated:
                # The headers never ended (the client went, or its deadline passed): there is no request, and
                # nobody to answer.
                self.close_connection = True
                return False
            return True

        def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
            # http.server's own refusals (a bad request line, headers too large): before any body, like ours.
            self.server.received(self.connection)
            super().send_error(code, message, explain)
            self._linger()

        def log_message(self, format: str, *args: object) -> None:  # `format`: the base class's parameter name
            pass  # paths may hold the token: requests are logged below, by endpoint only

        def _cors(self) -> None:
            origin = self.headers.get("Origin") if self.headers else None
            if origin and origin in origins:
                self.send_header("Access-Control-Allow-Origin", origin)
                self.send_header("Access-Control-Allow-Credentials", "true")
                self.send_header("Access-Control-Allow-Headers", "content-type,x-namespace,authorization")
                self.send_header("Access-Control-Allow-Methods", "POST, GET, OPTIONS")
                self.send_header("Vary", "Origin")

        def _reply(self, status: int, body: Mapping[str, object] | str, **headers: str) -> None:
            data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
            self.send_response(status)
            self._cors()
            for name, value in headers.items():
                self.send_header(name.replace("_", "-"), value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _refuse(self, status: int, body: Mapping[str, object], **headers: str) -> None:
            """Answer a request whose body is not read, and close."""
            self.server.received(self.connection)
            self._reply(status, body, **headers)
            self._linger()

        def _linger(self) -> None:
            self.close_connection = True
            # Closing over unread bytes resets the connection, and the reset can overtake the answer: say we
            # are done, and discard a little of what still comes (never more than LINGER_BYTES, never kept).
            with contextlib.suppress(OSError):
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_WR)
                discarded, until = 0, time.monotonic() + LINGER_SECONDS
                while discarded < LINGER_BYTES and (left := until - time.monotonic()) > 0:
                    self.connection.settimeout(left)
                    chunk = self.connection.recv(65536)
                    if not chunk:
                        break
                    discarded += len(chunk)

        def _route(self) -> tuple[str, bool]:
            """The endpoint asked for, and whether its path carries the shared token (a capability path)."""
            path = self.path.split("?", 1)[0]
            carried = False
            if path.startswith("/t/"):
                given, _, rest = path[3:].partition("/")
                carried = _same(given, token)
                path = "/" + rest
            return path.rstrip("/") or "/", carried

        def _authorise(self, endpoint: str, carried: bool) -> tuple[str, _Refusal | None]:
            """Who is asking (``token``, or a JWT's role), or why the request is refused."""
            if carried:
                return "token", None
            scheme, _, credential = self.headers.get("Authorization", "").strip().partition(" ")
            credential = credential.strip()
            if scheme.lower() != "bearer" or not credential:
                return "", _Refusal(401, "a valid token is required", "no bearer credential")
            if _same(credential, token):
                return "token", None
            if not issuers.issuers or credential.count(".") != 2:
                return "", _Refusal(401, "a valid token is required", "not the codec token")
            try:
                principal: Principal = issuers.verify(credential, datetime.now(UTC))
            except Unauthenticated as error:
                # The reason goes to the caller (about its own token); the log keeps a category only.
                return "", _Refusal(401, f"a valid token is required: {error}", "token not verified")
            if principal.role not in ROLES[endpoint]:
                allowed = sorted(r.value for r in ROLES[endpoint])
                return principal.role.value, _Refusal(
                    403, f"role {principal.role.value!r} may not use {endpoint} (allowed: {', '.join(allowed)})",
                    "role not allowed", {"role": principal.role.value, "issuer": principal.issuer})
            return principal.role.value, None

        def _length(self) -> int | _Refusal:
            """The body's announced length, or the refusal of a body that is absent, malformed or too large."""
            if "Transfer-Encoding" in self.headers:
                return _Refusal(411, "send the body with a Content-Length (no chunked bodies)", "chunked")
            values = {v.strip() for v in self.headers.get_all("Content-Length") or []}
            if not values:
                return _Refusal(411, "a Content-Length is required", "no length")
            given = values.pop()
            if values or not _LENGTH.fullmatch(given):
                return _Refusal(400, "the Content-Length is not one whole number", "bad length")
            if int(given) > limits.max_body:
                return _Refusal(413, f"the body is larger than {limits.max_body} bytes", "too large",
                                {"announced": int(given)})
            return int(given)

        def do_OPTIONS(self) -> None:  # do_<METHOD>: http.server's naming
            self.server.received(self.connection)
            self.send_response(200)
            self._cors()
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_GET(self) -> None:
            self.server.received(self.connection)
            endpoint, _ = self._route()
            if endpoint == "/health":
                self._reply(200, {"ok": True})  # to anyone: nothing about the keys or the configuration
            else:
                self._reply(404, {"error": "not found"})

        def do_POST(self) -> None:
            endpoint, carried = self._route()
            if endpoint not in ROLES:
                self._refuse(404, {"error": "not found"})
                return
            caller, refusal = self._authorise(endpoint, carried)
            length = self._length() if refusal is None else 0
            if isinstance(length, _Refusal):
                refusal = length
            if refusal is not None:
                log.warning("codec request refused", endpoint=endpoint, status=refusal.status,
                            reason=refusal.reason, **refusal.fields)
                headers = {"WWW_Authenticate": 'Bearer realm="codec"'} if refusal.status == 401 else {}
                body: dict[str, object] = {"error": refusal.error}
                if refusal.status == 413:
                    body["max_body"] = limits.max_body
                self._refuse(refusal.status, body, **headers)
                return
            assert isinstance(length, int)
            if not self.server.reserve(length):
                self.server.busy.add()
                self._refuse(503, {"error": "the codec server is busy: try again"}, Retry_After="1")
                return
            try:
                self._convert(endpoint, length, caller)
            finally:
                self.server.free(length)

        def _convert(self, endpoint: str, length: int, caller: str) -> None:
            try:
                data = self.rfile.read(length)
            except (TimeoutError, OSError):
                data = b""
            if len(data) < length:
                # Stalled past the timeout, or gone: no answer, the connection is closed.
                log.warning("codec request dropped: body shorter than its Content-Length", endpoint=endpoint,
                            announced=length, received=len(data))
                self.close_connection = True
                return
            self.server.received(self.connection)
            try:
                payloads = json_format.Parse(data, Payloads())
                convert = codec.decode_one if endpoint == "/decode" else codec.encode_one
                result = Payloads(payloads=[convert(p) for p in payloads.payloads])
            except UnknownKey as error:
                log.warning("codec request refused: unknown key", endpoint=endpoint, key_id=error.key_id)
                self._reply(400, {"error": str(error), "key_id": error.key_id})
                return
            except (ValueError, json_format.ParseError) as error:
                self._reply(400, {"error": str(error)[:300]})
                return
            log.info("codec request", endpoint=endpoint, payloads=len(result.payloads), caller=caller,
                     namespace=(self.headers.get("X-Namespace") or "")[:100] or None)
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
        """The endpoint for a UI that cannot send a token itself: the token as a capability path.

        It is a secret: keep it off command lines (``ps`` shows them to every user; dev/stack.py gives it to
        ``temporal server start-dev`` in the CLI's environment file instead). What remains: a UI hands its
        codec endpoint to every browser that loads it (``/api/v1/settings``), so whoever reaches the UI can
        read the token, as they could read decoded payloads through the UI itself. The embedded UI listens on
        127.0.0.1 only; a UI others reach needs a login (SSO) and JWTs, not this endpoint."""
        if not self.token:
            raise ValueError("no shared token: a UI without login cannot be given an endpoint")
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
                       origins: Iterable[str] = DEFAULT_ORIGINS, *, issuers: TrustedIssuers | None = None,
                       max_body: int | None = None, max_connections: int | None = None,
                       timeout: float | None = None) -> CodecServer:
    """Serve ``codec`` on ``host:port``. Callers prove themselves with ``token`` or a JWT from ``issuers``
    (none trusted unless given); limits not given come from the environment, else :class:`Limits`."""
    issuers = issuers or TrustedIssuers()
    if not token and not issuers.issuers:
        raise ValueError(f"{TOKEN_ENV} must be set (or trusted issuers given): the codec server refuses every "
                         "request without a credential")
    limits = Limits.from_env(max_body=max_body, max_connections=max_connections, timeout=timeout)
    server = _BoundedServer((host, port), _handler(codec, token, frozenset(origins), issuers, limits), limits)
    # Polls for stop() every 0.1 s, so stopping is quick.
    thread = threading.Thread(target=server.serve_forever, args=(0.1,), name="codec-server", daemon=True)
    thread.start()
    return CodecServer(server, thread, host, token)


def main() -> None:
    configure()
    codec = EncryptionCodec.from_env()
    if codec is None:
        raise SystemExit("COMPLAINTS_CODEC_KEYS is not set: nothing to decode with")
    origins = [o.strip() for o in os.environ.get(ORIGINS_ENV, ",".join(DEFAULT_ORIGINS)).split(",") if o.strip()]
    try:
        issuers = TrustedIssuers.from_env()
        running = start_codec_server(codec, os.environ.get(TOKEN_ENV, ""),
                                     os.environ.get("COMPLAINTS_CODEC_HOST", "127.0.0.1"),
                                     int(os.environ.get("COMPLAINTS_CODEC_PORT", "8081")), origins, issuers=issuers)
    except ValueError as error:
        raise SystemExit(str(error)) from None
    limits = cast(_BoundedServer, running.server).limits
    log.info("codec server started", url=running.url, keys=len(codec.key_ids), origins=origins,
             issuers=sorted(issuers.issuers), max_body=limits.max_body, max_connections=limits.max_connections,
             timeout=limits.timeout)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    running.stop()
    log.info("codec server stopped")


if __name__ == "__main__":
    main()
