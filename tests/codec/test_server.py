"""The codec server over real HTTP: round trips for an authorised caller, 401 without the token, 400 for an
unknown key, and the CORS answers the Temporal UI needs."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from codec.encryption import EncryptionCodec, new_codec_key, parse_keys
from codec.server import CodecServer, start_codec_server

UI = "http://127.0.0.1:8233"
TOKEN = "s3cret-token"


@pytest.fixture
def server() -> Iterator[CodecServer]:
    with start_codec_server(EncryptionCodec(parse_keys(new_codec_key())), TOKEN, origins=[UI]) as running:
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


def test_an_authorised_caller_encodes_and_decodes(server: CodecServer) -> None:
    status, headers, encoded = call(f"{server.url}/encode", payloads("siti@example.co.id"), AUTH)
    assert status == 200 and headers["Access-Control-Allow-Origin"] == UI
    sealed = encoded["payloads"][0]
    assert base64.b64decode(sealed["metadata"]["encoding"]) == b"binary/encrypted"
    assert b"siti" not in base64.b64decode(sealed["data"])
    status, _, decoded = call(f"{server.url}/decode", encoded, AUTH)
    assert status == 200 and decoded == payloads("siti@example.co.id")


def test_the_ui_capability_path_carries_the_token(server: CodecServer) -> None:
    status, _, encoded = call(f"{server.ui_endpoint}/encode", payloads("x"), {"Origin": UI})
    assert status == 200
    assert call(f"{server.ui_endpoint}/decode", encoded, {"Origin": UI})[2] == payloads("x")


@pytest.mark.parametrize("headers,path", [
    ({}, "/decode"),
    ({"Authorization": "Bearer wrong"}, "/decode"),
    ({"Authorization": TOKEN}, "/encode"),
    ({}, "/t/wrong/decode"),
])
def test_a_request_without_the_token_is_refused(server: CodecServer, headers: dict[str, str], path: str) -> None:
    status, _, body = call(f"{server.url}{path}", payloads("x"), headers)
    assert status == 401 and "token" in body["error"]


def test_a_payload_under_an_unknown_key_is_refused_naming_the_key(server: CodecServer) -> None:
    other = EncryptionCodec(parse_keys(new_codec_key()))
    with start_codec_server(other, TOKEN) as elsewhere:
        sealed = call(f"{elsewhere.url}/encode", payloads("x"), AUTH)[2]
    status, _, body = call(f"{server.url}/decode", sealed, AUTH)
    assert status == 400 and body["key_id"] == other.current


def test_the_ui_preflight_is_answered_for_allowed_origins_only(server: CodecServer) -> None:
    status, headers, _ = call(f"{server.url}/decode", None, {"Origin": UI, "Access-Control-Request-Method": "POST"},
                              method="OPTIONS")
    assert status == 200
    assert headers["Access-Control-Allow-Origin"] == UI and headers["Access-Control-Allow-Credentials"] == "true"
    assert "authorization" in headers["Access-Control-Allow-Headers"]
    _, foreign, _ = call(f"{server.url}/decode", None, {"Origin": "http://evil.example"}, method="OPTIONS")
    assert "Access-Control-Allow-Origin" not in foreign


def test_health_needs_no_token(server: CodecServer) -> None:
    assert call(f"{server.url}/health", method="GET")[0] == 200
