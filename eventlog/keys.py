"""Customer data keys: sealing and opening personal fields, and erasing a customer by destroying their keys.

A field is sealed with AES-GCM-SIV under the customer's data key. The nonce is derived from the key and
the field's place (complaint, sequence, event type, field), so the same text at the same place always
seals to the same bytes: a retried append is recognised, not mistaken for divergent history. GCM-SIV stays
safe when a nonce repeats, and the place is also the associated data, so a sealed value moved to another
event or field does not open. Data keys are stored wrapped (AES-GCM) with the master key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass

import asyncpg
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, AESGCMSIV

from domain.personal import SEALED_PREFIX

MASTER_KEY_ENV = "COMPLAINTS_MASTER_KEY"


def new_master_key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


def master_key_from(text: str | None) -> bytes:
    if not text:
        raise SystemExit(f"{MASTER_KEY_ENV} is not set: it wraps every customer's data key "
                         "(`make up` prints one for the embedded stack).")
    try:
        key = base64.urlsafe_b64decode(text.encode())
    except ValueError as error:
        raise SystemExit(f"{MASTER_KEY_ENV} is not base64: {error}") from None
    if len(key) != 32:
        raise SystemExit(f"{MASTER_KEY_ENV} must be 32 bytes (base64), got {len(key)}")
    return key


def master_key() -> bytes:
    return master_key_from(os.environ.get(MASTER_KEY_ENV))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class DataKey:
    key_id: str
    key: bytes

    def seal(self, plaintext: str, place: bytes) -> str:
        nonce = hmac.new(self.key, place, hashlib.sha256).digest()[:12]
        sealed = AESGCMSIV(self.key).encrypt(nonce, plaintext.encode("utf-8"), place)
        return f"{SEALED_PREFIX}{self.key_id}:{_b64(sealed)}"

    def open_sealed(self, body: str, place: bytes) -> str:
        nonce = hmac.new(self.key, place, hashlib.sha256).digest()[:12]
        return AESGCMSIV(self.key).decrypt(nonce, _unb64(body), place).decode("utf-8")


class SealedFieldError(ValueError):
    """A sealed value that does not open with its key: tampered, or moved from another place."""


class CustomerKeyring:
    """The keys table (migrations/003_customer_keys.sql), wrapped with the master key."""

    def __init__(self, pool: asyncpg.Pool, master: bytes) -> None:
        self.pool = pool
        self._master = AESGCM(master)

    def _wrap(self, key_id: str, key: bytes) -> bytes:
        nonce = secrets.token_bytes(12)
        return nonce + self._master.encrypt(nonce, key, key_id.encode())

    def _unwrap(self, key_id: str, wrapped: bytes) -> bytes:
        return self._master.decrypt(wrapped[:12], wrapped[12:], key_id.encode())

    async def key_for(self, customer_id: str) -> DataKey:
        """The customer's live key, created on first use (once, even with several workers racing), through
        the one function the application role may call for it."""
        async with self.pool.acquire() as conn:
            row = await conn.fetchrow(
                "SELECT key_id, wrapped_key FROM complaint_customer_keys WHERE customer_id = $1 AND erased_at IS NULL",
                customer_id,
            )
            if row is None:
                key_id = secrets.token_hex(8)
                key = AESGCMSIV.generate_key(256)
                row = await conn.fetchrow("SELECT key_id, wrapped_key FROM complaint_customer_key($1, $2, $3)",
                                          customer_id, key_id, self._wrap(key_id, key))
                assert row is not None
        # Read every time, never cached: a key erased by another process must not go on sealing new data.
        return DataKey(row["key_id"], self._unwrap(row["key_id"], row["wrapped_key"]))

    async def opener(self) -> KeyOpener:
        """An opener that knows every key, live or destroyed (destroyed ones open to None)."""
        async with self.pool.acquire() as conn:
            rows = await conn.fetch("SELECT key_id, wrapped_key FROM complaint_customer_keys")
        keys = {r["key_id"]: (DataKey(r["key_id"], self._unwrap(r["key_id"], r["wrapped_key"]))
                              if r["wrapped_key"] is not None else None) for r in rows}
        return KeyOpener(keys)

    async def erase(self, customer_id: str, *, requested_by: str, legal_basis: str) -> int:
        """Destroy the customer's keys (one customer per call) and record who asked and why, in the same
        transaction; returns how many keys were live. Needs the eraser role (DATABASE_ERASER_URL)."""
        return await erase_customer(self.pool, customer_id, requested_by=requested_by, legal_basis=legal_basis)


async def erase_customer(pool: asyncpg.Pool, customer_id: str, *, requested_by: str, legal_basis: str) -> int:
    """Crypto-shredding through ``erase_complaint_customer`` (migrations/005_least_privilege.sql)."""
    async with pool.acquire() as conn:
        return int(await conn.fetchval("SELECT erase_complaint_customer($1, $2, $3)",
                                       customer_id, requested_by, legal_basis))


class KeyOpener:
    def __init__(self, keys: dict[str, DataKey | None]) -> None:
        self.keys = keys

    def open(self, token: str, place: bytes) -> str | None:
        key_id, _, body = token.removeprefix(SEALED_PREFIX).partition(":")
        key = self.keys.get(key_id)
        if key is None:
            return None
        try:
            return key.open_sealed(body, place)
        except (InvalidTag, ValueError) as error:
            raise SealedFieldError(f"sealed value with key {key_id} does not open at {place.decode()}") from error
