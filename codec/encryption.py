"""Payload encryption for everything that crosses into Temporal (inputs, results, queries, update
arguments): history holds no readable personal data, only ``binary/encrypted`` payloads.

AES-GCM with a fresh 96-bit nonce per payload and the key id as associated data. Keys come from
COMPLAINTS_CODEC_KEYS, ``id:base64url-key`` entries separated by commas, newest last: payloads are always
sealed with the newest, and every listed key still opens the payloads it sealed (rotation: add a key at
the end, keep the old ones until histories written with them have aged out of retention).
"""

from __future__ import annotations

import base64
import os
import secrets
from collections.abc import Mapping, Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

KEYS_ENV = "COMPLAINTS_CODEC_KEYS"
ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"
#: Added to a payload that arrived unencrypted, so the worker can refuse personal data sent in plaintext.
PLAINTEXT = "complaints-plaintext"


class UnknownKey(ValueError):
    """A payload sealed with a key this codec was not given."""

    def __init__(self, key_id: str) -> None:
        super().__init__(f"payload sealed with key {key_id!r}, which is not among COMPLAINTS_CODEC_KEYS")
        self.key_id = key_id


def new_codec_key() -> str:
    """A fresh ``id:key`` entry for COMPLAINTS_CODEC_KEYS."""
    return f"k{secrets.token_hex(4)}:{base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()}"


def parse_keys(text: str) -> dict[str, bytes]:
    keys: dict[str, bytes] = {}
    for entry in (e.strip() for e in text.split(",") if e.strip()):
        key_id, sep, encoded = entry.partition(":")
        if not sep or not key_id:
            raise ValueError(f"{KEYS_ENV}: entries are id:base64key, got {entry[:8]}...")
        key = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        if len(key) != 32:
            raise ValueError(f"{KEYS_ENV}: key {key_id!r} must be 32 bytes, got {len(key)}")
        keys[key_id] = key
    return keys


class EncryptionCodec(PayloadCodec):
    def __init__(self, keys: Mapping[str, bytes]) -> None:
        if not keys:
            raise ValueError("an encryption codec needs at least one key")
        self._ciphers = {key_id: AESGCM(key) for key_id, key in keys.items()}
        self.current = list(keys)[-1]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> EncryptionCodec | None:
        text = environ.get(KEYS_ENV, "").strip()
        return cls(parse_keys(text)) if text else None

    @property
    def key_ids(self) -> list[str]:
        return list(self._ciphers)

    def encode_one(self, payload: Payload) -> Payload:
        nonce = secrets.token_bytes(12)
        sealed = self._ciphers[self.current].encrypt(nonce, payload.SerializeToString(), self.current.encode())
        return Payload(metadata={"encoding": ENCODING, KEY_ID: self.current.encode()}, data=nonce + sealed)

    def decode_one(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") != ENCODING:
            # Plain JSON from a client without the codec: as it came, marked so the worker's converter can
            # tell the workflow (which refuses personal data that travelled in plaintext).
            marked = Payload()
            marked.CopyFrom(payload)
            marked.metadata[PLAINTEXT] = b"1"
            return marked
        key_id = payload.metadata.get(KEY_ID, b"").decode()
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise UnknownKey(key_id)
        try:
            opened = cipher.decrypt(payload.data[:12], payload.data[12:], key_id.encode())
        except InvalidTag:
            raise ValueError(f"payload sealed with key {key_id!r} does not open: altered or truncated") from None
        return Payload.FromString(opened)

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.encode_one(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.decode_one(p) for p in payloads]

