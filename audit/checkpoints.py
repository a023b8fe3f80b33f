"""Sealed checkpoints: a signed commitment to the whole log at a position (``complaints seal``).

A checkpoint holds the position, the number of events and complaints up to it, and the Merkle root of
every complaint's chain head at that position, signed with Ed25519. Checking one recomputes all of that
from the log as it is now: deleting a whole complaint, even with the trigger disabled, changes the count
and the root. Positions become visible in order (see the append function), so "every row up to P" is
well defined as soon as P is visible.
"""

from __future__ import annotations

import base64
import os
from datetime import datetime, timezone

import asyncpg
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from pydantic import BaseModel, ConfigDict

from domain import merkle
from domain.chain import Break, canonical_json, canonical_time

SEAL_KEY_ENV = "COMPLAINTS_SEAL_KEY"
PUBLIC_KEY_ENV = "COMPLAINTS_SEAL_PUBLIC_KEY"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def new_seal_key() -> str:
    return _b64(Ed25519PrivateKey.generate().private_bytes_raw())


def signing_key(text: str | None = None) -> Ed25519PrivateKey:
    text = text or os.environ.get(SEAL_KEY_ENV)
    if not text:
        raise SystemExit(f"{SEAL_KEY_ENV} is not set: the Ed25519 key checkpoints are signed with "
                         "(`make up` prints one for the embedded stack).")
    return Ed25519PrivateKey.from_private_bytes(_unb64(text))


def public_key_of(key: Ed25519PrivateKey) -> str:
    return _b64(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))


class Checkpoint(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    position: int
    events: int
    complaints: int
    root: str
    sealed_at: datetime
    public_key: str
    signature: str

    def statement(self) -> bytes:
        """What is signed: everything but the key and the signature, in canonical JSON."""
        return canonical_json({"complaints": self.complaints, "events": self.events, "position": self.position,
                               "root": self.root, "sealed_at": canonical_time(self.sealed_at)})

    def signature_holds(self, trusted_public_key: str | None = None) -> bool:
        """Signed by its own key, and that key is the trusted one when one is given."""
        if trusted_public_key and trusted_public_key != self.public_key:
            return False
        try:
            Ed25519PublicKey.from_public_bytes(_unb64(self.public_key)).verify(_unb64(self.signature),
                                                                              self.statement())
        except (InvalidSignature, ValueError):
            return False
        return True


Head = tuple[str, int, str]


async def heads_at(conn: asyncpg.Connection, position: int) -> tuple[list[Head], int]:
    """Every complaint's last (sequence, hash) among rows at or before ``position``, by complaint id; and
    how many rows there are."""
    rows = await conn.fetch(
        "SELECT DISTINCT ON (complaint_id) complaint_id, sequence, hash FROM complaint_events"
        " WHERE position <= $1 ORDER BY complaint_id, sequence DESC", position,
    )
    count = await conn.fetchval("SELECT count(*) FROM complaint_events WHERE position <= $1", position)
    return [(r["complaint_id"], r["sequence"], r["hash"]) for r in rows], int(count)


def root_of(heads: list[Head]) -> str:
    return merkle.root([merkle.leaf_hash(*h) for h in heads]).hex()


async def seal(pool: asyncpg.Pool, key: Ed25519PrivateKey) -> Checkpoint:
    """Sign the log as it stands and store the checkpoint (printing it is the caller's part)."""
    async with pool.acquire() as conn:
        position = int(await conn.fetchval("SELECT coalesce(max(position), 0) FROM complaint_events"))
        heads, events = await heads_at(conn, position)
        unsigned = Checkpoint(position=position, events=events, complaints=len(heads), root=root_of(heads),
                              sealed_at=datetime.now(timezone.utc).replace(microsecond=0),
                              public_key=public_key_of(key), signature="")
        checkpoint = unsigned.model_copy(update={"signature": _b64(key.sign(unsigned.statement()))})
        await conn.execute(
            "INSERT INTO complaint_checkpoints (position, events, complaints, root, sealed_at, public_key, signature)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (position) DO NOTHING",
            checkpoint.position, checkpoint.events, checkpoint.complaints, checkpoint.root, checkpoint.sealed_at,
            checkpoint.public_key, checkpoint.signature,
        )
        stored = await conn.fetchrow("SELECT * FROM complaint_checkpoints WHERE position = $1", position)
    return Checkpoint(**dict(stored))


async def stored_checkpoints(pool: asyncpg.Pool) -> list[Checkpoint]:
    async with pool.acquire() as conn:
        rows = await conn.fetch("SELECT * FROM complaint_checkpoints ORDER BY position")
    return [Checkpoint(**{**dict(r), "root": r["root"].strip()}) for r in rows]


async def check(pool: asyncpg.Pool, checkpoint: Checkpoint, trusted_public_key: str | None = None) -> list[Break]:
    """Does the log still extend this checkpoint? Signature, event count, complaint count and root."""
    where = f"checkpoint @{checkpoint.position}"
    found = []
    if not checkpoint.signature_holds(trusted_public_key):
        found.append(Break(complaint_id=where, sequence=0, kind="checkpoint_signature",
                           detail="the signature does not hold" + (" with the trusted key" if trusted_public_key else "")))
    async with pool.acquire() as conn:
        heads, events = await heads_at(conn, checkpoint.position)
    if events != checkpoint.events or len(heads) != checkpoint.complaints:
        found.append(Break(complaint_id=where, sequence=0, kind="checkpoint_count",
                           detail=f"sealed {checkpoint.events} events of {checkpoint.complaints} complaints; the "
                                  f"log now has {events} events of {len(heads)} complaints up to that position"))
    if root_of(heads) != checkpoint.root:
        found.append(Break(complaint_id=where, sequence=0, kind="checkpoint_root",
                           detail="the chain heads at that position no longer give the sealed root"))
    return found
