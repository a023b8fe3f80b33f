"""Customer data keys: sealing and opening personal fields, and erasing a customer by destroying their keys.

A field is sealed with AES-GCM-SIV under the customer's data key. The nonce is derived from the key and
the field's place (complaint, sequence, event type, field), so the same text at the same place always
seals to the same bytes: a retried append is recognised, not mistaken for divergent history. GCM-SIV stays
safe when a nonce repeats, and the place is also the associated data, so a sealed value moved to another
event or field does not open. Data keys are stored wrapped (AES-GCM) with the master key.

Master keys rotate without downtime: COMPLAINTS_MASTER_KEY lists one or more keys (comma-separated, newest
last, as COMPLAINTS_CODEC_KEYS does). The newest wraps new data keys; a wrapped key records the id (a
fingerprint) of the master key that wrapped it, and is unwrapped by that one. ``complaints
rotate-master-key`` re-wraps every live key with the newest; then the older master keys can go. Keys wrapped
before master key ids existed carry none and are tried against each configured master key.

A customer once erased gets no key again (migrations/007_erasure.sql): personal data for them is refused
(:class:`CustomerErased`) instead of being sealed under a fresh key that the erasure never destroyed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import asyncpg
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, AESGCMSIV

from domain.chain import Recorded
from domain.events import Event, parse_event
from domain.personal import (
    SEALED_PREFIX,
    KeyUnavailableError,
    SealedFieldError,
    UnknownKeyError,
    is_sealed,
    open_payload,
)

__all__ = ["MASTER_KEY_ENV", "CustomerErased", "CustomerKeyring", "DataKey", "KeyOpener", "KeyUnavailableError",
           "MasterKeys", "OpenComplaints", "Rotation", "SealedFieldError", "UnknownKeyError", "erase_customer",
           "master_key", "master_key_from", "new_master_key"]

MASTER_KEY_ENV = "COMPLAINTS_MASTER_KEY"
#: SQLSTATEs of migrations/007_erasure.sql.
CUSTOMER_ERASED = "CE010"
OPEN_COMPLAINTS = "CE011"
_WRAPPED_V2 = b"mk:"
_LEGACY_WRAPPED_LENGTH = 12 + 32 + 16  # nonce, key, tag


def new_master_key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


def master_key_id(key: bytes) -> str:
    """A master key's id: a fingerprint, so the same key always has the same id and no id is configured."""
    return hashlib.sha256(b"complaints master key\x00" + key).hexdigest()[:16]


@dataclass(frozen=True)
class MasterKeys:
    """The configured master keys, oldest first: the last (newest) wraps, each unwraps what it wrapped."""

    keys: tuple[tuple[str, bytes], ...]

    @classmethod
    def of(cls, *keys: bytes) -> MasterKeys:
        return cls(tuple((master_key_id(k), k) for k in dict.fromkeys(keys)))

    @property
    def newest(self) -> tuple[str, bytes]:
        return self.keys[-1]

    def get(self, key_id: str) -> bytes | None:
        return next((k for i, k in self.keys if i == key_id), None)


def master_key_from(text: str | None) -> MasterKeys:
    if not text or not text.strip():
        raise SystemExit(f"{MASTER_KEY_ENV} is not set: it wraps every customer's data key "
                         "(`make up` prints one for the embedded stack).")
    keys = []
    for number, entry in enumerate((e.strip() for e in text.split(",") if e.strip()), start=1):
        try:
            key = base64.urlsafe_b64decode(entry.encode() + b"=" * (-len(entry) % 4))
        except ValueError as error:
            raise SystemExit(f"{MASTER_KEY_ENV}: key {number} is not base64: {error}") from None
        if len(key) != 32:
            raise SystemExit(f"{MASTER_KEY_ENV}: key {number} must be 32 bytes (base64), got {len(key)}")
        keys.append(key)
    if not keys:
        raise SystemExit(f"{MASTER_KEY_ENV} lists no key")
    return MasterKeys.of(*keys)


def master_key() -> MasterKeys:
    """COMPLAINTS_MASTER_KEY: one key, or several (comma-separated, newest last) while rotating."""
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


class CustomerErased(Exception):
    """The customer was erased: no personal data of theirs is sealed (nor kept) again."""


class OpenComplaints(Exception):
    """An erasure refused: the customer has complaints still open (withdraw or close them first)."""


class CustomerKeyring:
    """The keys table (migrations/003_customer_keys.sql), wrapped with the master keys."""

    def __init__(self, pool: asyncpg.Pool, master: bytes | MasterKeys) -> None:
        self.pool = pool
        self.master = master if isinstance(master, MasterKeys) else MasterKeys.of(master)

    def _wrap(self, key_id: str, key: bytes) -> bytes:
        """``mk:<master key id>:`` nonce, ciphertext: the newest master key, named."""
        master_id, master = self.master.newest
        nonce = secrets.token_bytes(12)
        return _WRAPPED_V2 + master_id.encode() + b":" + nonce + AESGCM(master).encrypt(nonce, key, key_id.encode())

    @staticmethod
    def wrapped_by(wrapped: bytes) -> str | None:
        """The id of the master key that wrapped a key (None: wrapped before ids were recorded)."""
        if len(wrapped) == _LEGACY_WRAPPED_LENGTH or not wrapped.startswith(_WRAPPED_V2):
            return None
        return wrapped[len(_WRAPPED_V2):].partition(b":")[0].decode("ascii", "replace")

    def _unwrap(self, key_id: str, wrapped: bytes) -> bytes:
        master_id = self.wrapped_by(wrapped)
        if master_id is None:  # no id: whichever configured master key opens it (newest first)
            candidates = [k for _, k in reversed(self.master.keys)]
            body = wrapped
        else:
            master = self.master.get(master_id)
            if master is None:
                raise KeyUnavailableError(f"key {key_id} is wrapped with master key {master_id}, which is not in "
                                          f"{MASTER_KEY_ENV}")
            candidates = [master]
            body = wrapped[len(_WRAPPED_V2) + len(master_id) + 1:]
        for master in candidates:
            try:
                return AESGCM(master).decrypt(body[:12], body[12:], key_id.encode())
            except InvalidTag:
                continue
        raise KeyUnavailableError(f"key {key_id} does not unwrap with any master key in {MASTER_KEY_ENV}")

    async def key_for(self, customer_id: str) -> DataKey:
        """The customer's live key, created on first use (once, even with several workers racing), through
        the one function the application role may call for it. Raises :class:`CustomerErased` for a customer
        who was erased (the function refuses them a new key; a key made for them before that rule is not
        used either)."""
        async with self.pool.acquire() as conn:
            row = await conn.fetchrow(
                "SELECT key_id, wrapped_key FROM complaint_customer_keys WHERE customer_id = $1 AND erased_at IS NULL"
                " AND NOT EXISTS (SELECT 1 FROM complaint_erasures WHERE customer_id = $1)",
                customer_id,
            )
            if row is None:
                key_id = secrets.token_hex(8)
                key = AESGCMSIV.generate_key(256)
                try:
                    row = await conn.fetchrow("SELECT key_id, wrapped_key FROM complaint_customer_key($1, $2, $3)",
                                              customer_id, key_id, self._wrap(key_id, key))
                except asyncpg.PostgresError as error:
                    if getattr(error, "sqlstate", None) == CUSTOMER_ERASED:
                        raise CustomerErased(f"customer {customer_id} was erased: their personal data is not "
                                             "kept again") from None
                    raise
                assert row is not None
        # Read every time, never cached: a key erased by another process must not go on sealing new data.
        return DataKey(row["key_id"], self._unwrap(row["key_id"], row["wrapped_key"]))

    async def opener(self, key_ids: Iterable[str] | None = None) -> KeyOpener:
        """An opener that knows every key (or those of ``key_ids``), live or destroyed (destroyed ones open to
        None; a key id it does not know is :class:`UnknownKeyError`). Keys are unwrapped when first used."""
        async with self.pool.acquire() as conn:
            if key_ids is None:
                rows = await conn.fetch("SELECT key_id, wrapped_key FROM complaint_customer_keys")
            else:
                rows = await conn.fetch("SELECT key_id, wrapped_key FROM complaint_customer_keys"
                                        " WHERE key_id = ANY($1::text[])", list(key_ids))
        return KeyOpener({r["key_id"]: r["wrapped_key"] for r in rows}, self._unwrap)

    async def open_events(self, complaint_id: str, records: list[Recorded]) -> list[Event]:
        """A complaint's events as the customer's own words: personal fields opened ([erased] if erased)."""
        key_ids = {value.removeprefix(SEALED_PREFIX).partition(":")[0]
                   for record in records for value in record.payload.values()
                   if isinstance(value, str) and is_sealed(value)}
        opener = await self.opener(key_ids)
        return [parse_event(r.type, r.schema_version, open_payload(r.type, r.payload, complaint_id, r.sequence,
                                                                   opener))
                for r in records]

    async def rotate(self, pool: asyncpg.Pool | None = None) -> Rotation:
        """Re-wrap every live key not yet wrapped with the newest master key, through
        ``rewrap_complaint_customer_key`` (granted to the eraser role: pass its ``pool``). Each key is checked
        to unwrap to the same bytes before it is stored, and stored only if nobody changed or destroyed it
        meanwhile. Safe to run again, and while workers run."""
        newest_id, _ = self.master.newest
        done = Rotation(master_key_id=newest_id)
        async with (pool or self.pool).acquire() as conn:
            rows = await conn.fetch("SELECT key_id, wrapped_key FROM complaint_customer_keys"
                                    " WHERE erased_at IS NULL ORDER BY key_id")
            for row in rows:
                key_id, wrapped = row["key_id"], row["wrapped_key"]
                if self.wrapped_by(wrapped) == newest_id:
                    done.current += 1
                    continue
                try:
                    key = self._unwrap(key_id, wrapped)
                except KeyUnavailableError:
                    done.unavailable.append(key_id)
                    continue
                rewrapped = self._wrap(key_id, key)
                assert self._unwrap(key_id, rewrapped) == key
                if await conn.fetchval("SELECT rewrap_complaint_customer_key($1, $2, $3)", key_id, wrapped, rewrapped):
                    done.rewrapped += 1
                else:
                    done.changed += 1  # destroyed (or re-wrapped by another run) meanwhile
        return done

    async def erase(self, customer_id: str, *, requested_by: str, legal_basis: str) -> int:
        """Destroy the customer's keys (one customer per call) and record who asked and why, in the same
        transaction; returns how many keys were live. Needs the eraser role (DATABASE_ERASER_URL)."""
        return await erase_customer(self.pool, customer_id, requested_by=requested_by, legal_basis=legal_basis)


@dataclass
class Rotation:
    """What ``rotate`` did: keys re-wrapped, already current, changed meanwhile, and those it could not
    unwrap (their master key is not configured: keep it until they are re-wrapped)."""

    master_key_id: str
    rewrapped: int = 0
    current: int = 0
    changed: int = 0
    unavailable: list[str] = field(default_factory=list)


async def erase_customer(pool: asyncpg.Pool, customer_id: str, *, requested_by: str, legal_basis: str) -> int:
    """Crypto-shredding through ``erase_complaint_customer`` (migrations/005_least_privilege.sql, and 007:
    refused with :class:`OpenComplaints` while a complaint of the customer is open)."""
    async with pool.acquire() as conn:
        try:
            return int(await conn.fetchval("SELECT erase_complaint_customer($1, $2, $3)",
                                           customer_id, requested_by, legal_basis))
        except asyncpg.PostgresError as error:
            if getattr(error, "sqlstate", None) == OPEN_COMPLAINTS:
                raise OpenComplaints(str(error)) from None
            raise


class KeyOpener:
    """Opens sealed values with the keys it was given (wrapped; each unwrapped once, when first needed)."""

    def __init__(self, wrapped: dict[str, bytes | None], unwrap: Callable[[str, bytes], bytes]) -> None:
        self._wrapped = wrapped
        self._unwrap = unwrap
        self._keys: dict[str, DataKey] = {}

    def _key(self, key_id: str) -> DataKey | None:
        if key_id not in self._wrapped:
            raise UnknownKeyError(f"sealed with key {key_id!r}, which was never issued")
        wrapped = self._wrapped[key_id]
        if wrapped is None:
            return None  # destroyed: the customer was erased
        if key_id not in self._keys:
            self._keys[key_id] = DataKey(key_id, self._unwrap(key_id, wrapped))
        return self._keys[key_id]

    def open(self, token: str, place: bytes) -> str | None:
        key_id, _, body = token.removeprefix(SEALED_PREFIX).partition(":")
        key = self._key(key_id)
        if key is None:
            return None
        try:
            return key.open_sealed(body, place)
        except (InvalidTag, ValueError) as error:
            raise SealedFieldError(f"sealed value with key {key_id} does not open at {place.decode()}") from error
