"""The codec server over real HTTP: round trips for an authorised caller (the shared token, or a JWT whose
role may), 401/403 for the others, 400 for an unknown key, the CORS answers the Temporal UI needs; and its
limits, each tried on loopback sockets: an oversized body, idle, stalled and trickling connections, more
connections than it serves at once. Last, the embedded dev server's command line holds no codec token."""

from __future__ import annotations

import base64
import http.client
import json
import os
import select
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from codec.encryption import EncryptionCodec, new_codec_key, parse_keys
from codec.server import MAX_BODY_ENV, CodecServer, start_codec_server
from dev.stack import TemporalServer, temporal_dev_server
from identity.tokens import IssuerKey, TrustedIssuers

UI = "http://127.0.0.1:8233"
TOKEN = "s3cret-token"
ISSUER = IssuerKey.generate("https://id.test")


@pytest.fixture
def server() -> Iterator[CodecServer]:
    with start_codec_server(EncryptionCodec(parse_keys(new_codec_key())), TOKEN, origins=[UI],
                            issuers=TrustedIssuers.of(ISSUER)) as running:
        yield running


def call(url: str, body: Any = None, headers: dict[str, str] | None = None, method: str = "POST"
         ) -> tuple[int, dict[str, str], Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            text = response.read()
            return response.status, dict(response.headers), json.loads(text) if text else None
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read() or b"null")


def payloads(*texts: str) -> dict[str, Any]:
    return {"payloads": [{"metadata": {"encoding": base64.b64encode(b"json/plain").decode()},
                          "data": base64.b64encode(json.dumps(t).encode()).decode()} for t in texts]}


AUTH = {"Authorization": f"Bearer {TOKEN}", "Origin": UI, "X-Namespace": "default"}


def bearer(credential: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {credential}"}


def connect(server: CodecServer) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=5)


def request_head(path: str, length: int | None, *, auth: str = f"Bearer {TOKEN}", extra: str = "") -> bytes:
    head = f"POST {path} HTTP/1.1\r\nHost: codec\r\nContent-Type: application/json\r\n"
    head += f"Authorization: {auth}\r\n" if auth else ""
    head += f"Content-Length: {length}\r\n" if length is not None else ""
    return (head + extra + "\r\n").encode()


def answer(sock: socket.socket, within: float = 5) -> tuple[bytes, float]:
    """Everything the server sends until it closes the connection, and how long that took."""
    started, data = time.monotonic(), b""
    sock.settimeout(within)
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass
    return data, time.monotonic() - started


def status(data: bytes) -> int:
    return int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/") else 0


def closed_within(sock: socket.socket, seconds: float) -> bool:
    """Whether the server closes ``sock`` (without a byte of answer) within ``seconds``."""
    sock.settimeout(seconds)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


# -- who may use it


def test_an_authorised_caller_encodes_and_decodes(server: CodecServer) -> None:
    status_, headers, encoded = call(f"{server.url}/encode", payloads("siti@example.co.id"), AUTH)
    assert status_ == 200 and headers["Access-Control-Allow-Origin"] == UI
    sealed = encoded["payloads"][0]
    assert base64.b64decode(sealed["metadata"]["encoding"]) == b"binary/encrypted"
    assert b"siti" not in base64.b64decode(sealed["data"])
    status_, _, decoded = call(f"{server.url}/decode", encoded, AUTH)
    assert status_ == 200 and decoded == payloads("siti@example.co.id")


def test_the_ui_capability_path_carries_the_token(server: CodecServer) -> None:
    status_, _, encoded = call(f"{server.ui_endpoint}/encode", payloads("x"), {"Origin": UI})
    assert status_ == 200
    assert call(f"{server.ui_endpoint}/decode", encoded, {"Origin": UI})[2] == payloads("x")


@pytest.mark.parametrize("header", [f"bearer {TOKEN}", f"BEARER {TOKEN}", f"Bearer   {TOKEN} ", f"bEaReR {TOKEN}"])
def test_the_bearer_scheme_is_matched_in_any_case(server: CodecServer, header: str) -> None:
    assert call(f"{server.url}/encode", payloads("x"), {"Authorization": header})[0] == 200


@pytest.mark.parametrize("headers,path", [
    ({}, "/decode"),
    ({"Authorization": "Bearer wrong"}, "/decode"),
    ({"Authorization": TOKEN}, "/encode"),
    ({"Authorization": f"Basic {TOKEN}"}, "/encode"),
    ({"Authorization": "Bearer "}, "/encode"),
    ({}, "/t/wrong/decode"),
    ({}, "/t//decode"),
])
def test_a_request_without_the_token_is_refused(server: CodecServer, headers: dict[str, str], path: str) -> None:
    status_, headers_, body = call(f"{server.url}{path}", payloads("x"), headers)
    assert status_ == 401 and "token" in body["error"]
    assert headers_["WWW-Authenticate"].startswith("Bearer")


def sealed_by(server: CodecServer, *texts: str) -> dict[str, Any]:
    status_, _, encoded = call(f"{server.url}/encode", payloads(*texts), AUTH)
    assert status_ == 200
    return encoded


@pytest.mark.parametrize("role,endpoint,expected", [
    ("agent", "/decode", 200), ("agent", "/encode", 200),
    ("supervisor", "/decode", 200), ("supervisor", "/encode", 200),
    ("auditor", "/decode", 200), ("auditor", "/encode", 403),
    ("intake", "/encode", 200), ("intake", "/decode", 403),
    ("customer", "/decode", 403), ("customer", "/encode", 403),
])
def test_a_jwt_from_a_trusted_issuer_may_what_its_role_may(server: CodecServer, role: str, endpoint: str,
                                                             expected: int) -> None:
    body = sealed_by(server, "x") if endpoint == "/decode" else payloads("x")
    status_, _, answer_ = call(f"{server.url}{endpoint}", body, bearer(ISSUER.issue("ana", role)))
    assert status_ == expected
    if expected == 200 and endpoint == "/decode":
        assert answer_ == payloads("x")
    if expected == 403:
        assert role in answer_["error"] and endpoint in answer_["error"]


def test_a_jwt_the_ui_passes_with_lowercase_bearer_decodes(server: CodecServer) -> None:
    sealed = sealed_by(server, "y")
    headers = {"Authorization": f"bearer {ISSUER.issue('ana', 'supervisor')}", "Origin": UI}
    status_, headers_, decoded = call(f"{server.url}/decode", sealed, headers)
    assert status_ == 200 and decoded == payloads("y") and headers_["Access-Control-Allow-Origin"] == UI


def _tampered() -> str:
    head, body, signature = ISSUER.issue("ana", "agent").split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    claims["role"] = "supervisor"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    return f"{head}.{forged}.{signature}"


@pytest.mark.parametrize("make,why", [
    (lambda: ISSUER.issue("ana", "agent", now=datetime.now(UTC) - timedelta(hours=3)), "expired"),
    (lambda: IssuerKey.generate("https://elsewhere.test").issue("ana", "agent"), "not trusted"),
    (lambda: IssuerKey.generate(ISSUER.issuer).issue("ana", "agent"), "no key"),
    (lambda: ISSUER.issue("ana", "agent", audience="another-app"), "audience"),
    (lambda: ISSUER.issue("ana", "agent", ttl=timedelta(days=30)), "longer"),
    (lambda: ISSUER.issue("ana", "system"), "system"),
    (_tampered, "signature"),
])
def test_an_unverifiable_jwt_is_refused(server: CodecServer, make: Any, why: str) -> None:
    status_, _, body = call(f"{server.url}/decode", sealed_by(server, "x"), bearer(make()))
    assert status_ == 401 and why in body["error"].lower()


def test_without_trusted_issuers_no_jwt_is_accepted() -> None:
    with start_codec_server(EncryptionCodec(parse_keys(new_codec_key())), TOKEN) as plain:
        assert call(f"{plain.url}/encode", payloads("x"), bearer(ISSUER.issue("ana", "agent")))[0] == 401


def test_a_server_may_trust_jwts_alone() -> None:
    with start_codec_server(EncryptionCodec(parse_keys(new_codec_key())), "",
                            issuers=TrustedIssuers.of(ISSUER)) as jwt_only:
        assert call(f"{jwt_only.url}/encode", payloads("x"), bearer(ISSUER.issue("ana", "agent")))[0] == 200
        # An empty shared token never matches an empty credential or capability path.
        assert call(f"{jwt_only.url}/t//encode", payloads("x"))[0] == 401
        assert call(f"{jwt_only.url}/encode", payloads("x"), {"Authorization": "Bearer"})[0] == 401
        with pytest.raises(ValueError):
            jwt_only.ui_endpoint  # noqa: B018
    with pytest.raises(ValueError):
        start_codec_server(EncryptionCodec(parse_keys(new_codec_key())), "")


def test_refusals_are_logged_without_the_credential_or_who_it_names(server: CodecServer,
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    customer = ISSUER.issue("siti.rahma@example.co.id", "customer")
    expired = ISSUER.issue("siti.rahma@example.co.id", "agent", now=datetime.now(UTC) - timedelta(days=1))
    with caplog.at_level("INFO"):
        assert call(f"{server.url}/decode", payloads("x"), bearer(customer))[0] == 403
        assert call(f"{server.url}/decode", payloads("x"), bearer(expired))[0] == 401
        assert call(f"{server.url}/t/{TOKEN}x/decode", payloads("x"))[0] == 401
        assert call(f"{server.url}/decode", payloads("x"), bearer(TOKEN + "x"))[0] == 401
    text = caplog.text
    assert text.count("codec request refused") == 4 and "customer" in text
    for secret in (customer, expired, TOKEN, "siti", "example.co.id"):
        assert secret not in text


def test_a_payload_under_an_unknown_key_is_refused_naming_the_key(server: CodecServer) -> None:
    other = EncryptionCodec(parse_keys(new_codec_key()))
    with start_codec_server(other, TOKEN) as elsewhere:
        sealed = call(f"{elsewhere.url}/encode", payloads("x"), AUTH)[2]
    status_, _, body = call(f"{server.url}/decode", sealed, AUTH)
    assert status_ == 400 and body["key_id"] == other.current


def test_the_ui_preflight_is_answered_for_allowed_origins_only(server: CodecServer) -> None:
    status_, headers, _ = call(f"{server.url}/decode", None, {"Origin": UI, "Access-Control-Request-Method": "POST"},
                               method="OPTIONS")
    assert status_ == 200
    assert headers["Access-Control-Allow-Origin"] == UI and headers["Access-Control-Allow-Credentials"] == "true"
    assert "authorization" in headers["Access-Control-Allow-Headers"]
    _, foreign, _ = call(f"{server.url}/decode", None, {"Origin": "http://evil.example"}, method="OPTIONS")
    assert "Access-Control-Allow-Origin" not in foreign


def test_health_needs_no_token_and_tells_nothing(server: CodecServer) -> None:
    status_, _, body = call(f"{server.url}/health", method="GET")
    assert status_ == 200 and body == {"ok": True}


# -- its limits


def test_an_oversized_body_is_refused_before_it_is_read(server: CodecServer) -> None:
    """100 MB announced, a few bytes sent: the answer is 413 at once (the server did not wait for the rest)."""
    with connect(server) as sock:
        sock.sendall(request_head("/decode", 100 * 1024 * 1024, extra=f"Origin: {UI}\r\n") + b'{"payloads": [')
        data, took = answer(sock)
    assert status(data) == 413 and took < 2
    body = json.loads(data.split(b"\r\n\r\n", 1)[1])
    assert body["max_body"] == 4 * 1024 * 1024 and f"Access-Control-Allow-Origin: {UI}".encode() in data
    with connect(server) as sock:  # nor is a stranger's body read to tell it it has no token
        sock.sendall(request_head("/decode", 100 * 1024 * 1024, auth="") + b"xx")
        data, took = answer(sock)
    assert status(data) == 401 and took < 2


def test_the_body_limit_is_configurable(monkeypatch: pytest.MonkeyPatch) -> None:
    codec = EncryptionCodec(parse_keys(new_codec_key()))
    small = payloads("x")
    size = len(json.dumps(small))
    with start_codec_server(codec, TOKEN, max_body=size) as exact:
        assert call(f"{exact.url}/encode", small, AUTH)[0] == 200
        assert call(f"{exact.url}/encode", payloads("xx"), AUTH)[0] == 413
    monkeypatch.setenv(MAX_BODY_ENV, str(size - 1))
    with start_codec_server(codec, TOKEN) as from_env:
        assert call(f"{from_env.url}/encode", small, AUTH)[0] == 413
    monkeypatch.setenv(MAX_BODY_ENV, "lots")
    with pytest.raises(ValueError, match=MAX_BODY_ENV):
        start_codec_server(codec, TOKEN)


@pytest.mark.parametrize("length,extra,expected", [
    (None, "", 411),
    (None, "Transfer-Encoding: chunked\r\n", 411),
    ("abc", "", 400),
    ("-1", "", 400),
    ("1e3", "", 400),
    ("５", "", 400),  # noqa: RUF001 - a full-width digit, which int() would accept: refused
    ("2", "Content-Length: 3\r\n", 400),
])
def test_a_body_needs_one_valid_content_length(server: CodecServer, length: str | None, extra: str,
                                                expected: int) -> None:
    head = request_head("/encode", None, extra=extra)
    if length is not None:
        head = head.replace(b"\r\n\r\n", f"\r\nContent-Length: {length}\r\n\r\n".encode())
    with connect(server) as sock:
        sock.sendall(head + b"{}")
        data, took = answer(sock)
    assert status(data) == expected and took < 2


@pytest.fixture
def quick() -> Iterator[CodecServer]:
    """A server with a 1 s timeout and 4 connections at once: what the limits tests exercise."""
    with start_codec_server(EncryptionCodec(parse_keys(new_codec_key())), TOKEN, timeout=1,
                            max_connections=4) as running:
        yield running


def test_idle_connections_are_closed_and_hold_no_thread(quick: CodecServer) -> None:
    threads = threading.active_count()
    idle = [connect(quick) for _ in range(60)]
    try:
        opened = time.monotonic()
        # Meanwhile a caller is served, though 60 connections (more than the 4 it serves at once) are open.
        assert call(f"{quick.url}/encode", payloads("x"), AUTH)[0] == 200
        assert threading.active_count() <= threads + 1
        closed = [closed_within(sock, max(0.1, opened + 3 - time.monotonic())) for sock in idle]
        assert all(closed) and time.monotonic() - opened < 3
    finally:
        for sock in idle:
            sock.close()


def test_a_body_shorter_than_its_content_length_is_dropped_within_the_timeout(quick: CodecServer) -> None:
    with connect(quick) as sock:
        sock.sendall(request_head("/encode", 100) + b'{"payloads"')
        data, took = answer(sock)
    assert data == b"" and 0.5 < took < 2.5


def test_unfinished_headers_are_dropped_within_the_timeout(quick: CodecServer) -> None:
    with connect(quick) as sock:
        sock.sendall(b"POST /encode HTTP/1.1\r\nHost: codec\r\n")
        data, took = answer(sock)
    assert data == b"" and 0.5 < took < 2.5


def test_a_trickled_request_is_dropped_within_the_timeout(quick: CodecServer) -> None:
    """A byte every 0.2 s keeps each read under the socket timeout; the request's deadline still ends it."""
    with connect(quick) as sock:
        started = time.monotonic()
        sock.sendall(b"POST /encode HTTP/1.1\r\nX-Slow: ")
        dropped = False
        while not dropped and time.monotonic() - started < 4:
            time.sleep(0.2)
            try:
                sock.sendall(b"a")
            except OSError:
                dropped = True
            if select.select([sock], [], [], 0)[0]:
                dropped = closed_within(sock, 0.1) or dropped
        took = time.monotonic() - started
    assert dropped and took < 2.5


def test_headers_are_bounded_in_size(server: CodecServer) -> None:
    with connect(server) as sock:
        sock.sendall(request_head("/encode", 2, extra="".join(f"X-Pad-{i}: {'a' * 8000}\r\n" for i in range(10))))
        data, _ = answer(sock)
    assert status(data) == 431


def test_beyond_its_connections_at_once_it_refuses_at_once(quick: CodecServer) -> None:
    # Four connections that have begun a request hold the four slots...
    holders = [connect(quick) for _ in range(4)]
    try:
        for sock in holders:
            sock.sendall(b"POST /encode HTTP/1.1\r\n")
        time.sleep(0.3)
        # ...so a fifth is answered 503 at once, without a thread of its own.
        with connect(quick) as sock:
            sock.sendall(request_head("/encode", len(json.dumps(payloads("x")))) + json.dumps(payloads("x")).encode())
            data, took = answer(sock)
        assert status(data) == 503 and took < 0.5 and b"Retry-After" in data
    finally:
        for sock in holders:
            sock.close()
    # When they go, their slots are free again.
    deadline = time.monotonic() + 2
    while call(f"{quick.url}/encode", payloads("x"), AUTH)[0] != 200:
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_many_requests_at_once_are_each_answered(quick: CodecServer) -> None:
    """A burst of callers (several times the slots): each gets its payloads or a quick 503, nothing hangs."""
    results: list[int] = []

    def one() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", quick.port, timeout=5)
        try:
            connection.request("POST", "/encode", json.dumps(payloads("x")), AUTH)
            results.append(connection.getresponse().status)
        except OSError:
            results.append(0)
        finally:
            connection.close()

    callers = [threading.Thread(target=one) for _ in range(24)]
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join(10)
    assert len(results) == 24 and set(results) <= {200, 503, 0} and 200 in results


# -- no secret on a command line


def test_the_dev_server_command_line_holds_no_codec_token(tmp_path: Path) -> None:
    endpoint = f"http://127.0.0.1:1/t/{TOKEN}"
    server = TemporalServer(db_file=tmp_path / "t.sqlite", port=1, ui_port=2, log_file=tmp_path / "temporal.log",
                            codec_endpoint=endpoint)
    command = server.command()
    assert not any(TOKEN in arg for arg in command) and "--ui-codec-endpoint" not in command
    assert str(server.env_file) in command


def _process_group(leader: int) -> list[int]:
    """The processes in ``leader``'s process group (start-dev's children, if it has any)."""
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == leader:
                members.append(int(entry.name))
    return members


async def test_the_embedded_ui_gets_its_codec_endpoint_off_the_command_line(tmp_path: Path) -> None:
    """The dev server is started as dev/stack.py starts it; its argv (and any child's) lacks the token, and
    its UI still hands the browser the codec endpoint."""
    codec = EncryptionCodec(parse_keys(new_codec_key()))
    with start_codec_server(codec, TOKEN) as running:
        async with temporal_dev_server(tmp_path, port=0, ui_port=0, codec_endpoint=running.ui_endpoint) as temporal:
            assert temporal.process is not None
            group = _process_group(temporal.process.pid)
            assert temporal.process.pid in group
            for pid in group:
                argv = Path(f"/proc/{pid}/cmdline").read_bytes()
                assert TOKEN.encode() not in argv and b"--ui-codec-endpoint" not in argv
            assert oct(os.stat(temporal.env_file).st_mode & 0o777) == oct(0o600)
            deadline, settings = time.monotonic() + 20, None
            while settings is None:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{temporal.ui_port}/api/v1/settings",
                                                timeout=2) as response:
                        settings = json.loads(response.read())
                except OSError:
                    assert time.monotonic() < deadline, "the UI did not answer"
                    time.sleep(0.2)
            assert settings["Codec"]["Endpoint"] == running.ui_endpoint
        assert temporal.process.poll() is not None


def test_bodies_in_flight_share_a_budget() -> None:
    """Four bodies of the largest size at once fill it: a fifth request gets 503 until one of them ends."""
    small = json.dumps(payloads("x")).encode()
    with start_codec_server(EncryptionCodec(parse_keys(new_codec_key())), TOKEN, max_body=1000) as running:
        holders = [connect(running) for _ in range(4)]
        try:
            for sock in holders:
                sock.sendall(request_head("/encode", 1000) + b'{"payloads"')
            time.sleep(0.3)
            with connect(running) as sock:
                sock.sendall(request_head("/encode", len(small)) + small)
                data, took = answer(sock)
            assert status(data) == 503 and took < 1
        finally:
            for sock in holders:
                sock.close()
        deadline = time.monotonic() + 2
        while call(f"{running.url}/encode", payloads("x"), AUTH)[0] != 200:
            assert time.monotonic() < deadline
            time.sleep(0.05)
