"""Sealed checkpoints: a signed commitment to the whole log at a position (``complaints seal``).

A checkpoint holds the position, the number of events and complaints up to it, and the Merkle root of
every complaint's chain head at that position, signed with Ed25519. Checking one recomputes all of that
from the log as it is now: deleting a whole complaint, even with the trigger disabled, changes the count
and the root. Positions become visible in order (see the append function), so "every row up to P" is
well defined as soon as P is visible.

Checkpoints are C2SP ``tlog-checkpoint`` signed notes, so standard note tooling reads them and one from
another deployment cannot pass for ours (the origin line names the deployment, and the key name is it)::

    complaints.example.com/log          <- origin (COMPLAINTS_LOG_ORIGIN)
    6                                   <- tree size: the complaints under the root
    q2l0...base64 root...=              <- the Merkle root (standard base64)
    position 76                         <- extension lines: the log position, events, when
    events 76
    sealed 2026-12-02T01:50:00.000000Z

    — complaints.example.com/log AbCd...base64(key id || signature)...

A checkpoint is *verified* only against a public key the auditor trusts (``--public-key`` or
COMPLAINTS_SEAL_PUBLIC_KEY, as a raw key or a note verifier key ``name+keyid+base64``); without one, its
signature is reported as not checked. Rows sealed before the note shape are checked as they were signed.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import asyncpg
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from pydantic import BaseModel, ConfigDict, SerializerFunctionWrapHandler, model_serializer

from domain import merkle
from domain.chain import Break, canonical_json, canonical_time
from eventlog.store import HORIZON

SEAL_KEY_ENV = "COMPLAINTS_SEAL_KEY"
PUBLIC_KEY_ENV = "COMPLAINTS_SEAL_PUBLIC_KEY"
ORIGIN_ENV = "COMPLAINTS_LOG_ORIGIN"
#: The signed-note signature line's prefix: an em dash and a space.
SIGNATURE_PREFIX = "\u2014 "
#: The signature type byte of an Ed25519 note key (C2SP signed-note).
ED25519 = b"\x01"


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


def log_origin(origin: str | None = None) -> str:
    """The deployment's name on its checkpoints (COMPLAINTS_LOG_ORIGIN), e.g. ``complaints.example.com/log``."""
    text = origin or os.environ.get(ORIGIN_ENV)
    if not text:
        raise SystemExit(f"{ORIGIN_ENV} is not set: the name of this deployment's log, printed on every checkpoint "
                         "(e.g. complaints.example.com/log)")
    if not text.isprintable() or " " in text or "+" in text or not text.strip():
        raise SystemExit(f"{ORIGIN_ENV} must be one printable word without spaces or '+', not {text!r}")
    return text


def key_id(name: str, public_key: bytes) -> bytes:
    """A note key's id: the first 4 bytes of SHA-256(name || "\\n" || type || key)."""
    return hashlib.sha256(name.encode() + b"\n" + ED25519 + public_key).digest()[:4]


def verifier_key(name: str, key: Ed25519PrivateKey) -> str:
    """The note verifier key auditors trust: ``name+<key id hex>+<base64(type || public key)>``."""
    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return f"{name}+{key_id(name, raw).hex()}+{base64.b64encode(ED25519 + raw).decode()}"


@dataclass(frozen=True)
class TrustedKey:
    """A public key the auditor trusts, with the note key name it signs under when one is known."""

    public_key: bytes
    name: str | None = None

    @classmethod
    def parse(cls, text: str) -> TrustedKey:
        """A note verifier key (``name+hex+base64``) or a raw Ed25519 key (base64url, as `seal --public-key`
        printed before the note shape)."""
        if "+" in text:
            name, hex_id, encoded = text.split("+", 2)  # base64 may hold "+", a name may not
            raw = base64.b64decode(encoded)
            if raw[:1] != ED25519 or len(raw) != 33 or key_id(name, raw[1:]).hex() != hex_id.lower():
                raise ValueError("not an Ed25519 note verifier key (name+keyid+base64)")
            return cls(raw[1:], name)
        raw = _unb64(text.strip())
        if len(raw) != 32:
            raise ValueError("a raw Ed25519 public key is 32 bytes")
        return cls(raw)

    @property
    def raw(self) -> str:
        return _b64(self.public_key)


class Signature(StrEnum):
    """What a checkpoint's signature says to an auditor."""

    verified = "verified"          # by the trusted key
    bad = "bad"                    # not by the trusted key, or not over what the checkpoint says
    unchecked = "unchecked"        # no trusted key was given: nothing is proven


@dataclass(frozen=True)
class Note:
    """A parsed signed note: the signed text and its signature lines (name, key id, signature)."""

    text: str
    signatures: list[tuple[str, bytes, bytes]]

    @property
    def lines(self) -> list[str]:
        return self.text.splitlines()

    @classmethod
    def parse(cls, note: str) -> Note:
        text, sep, rest = note.partition("\n\n")
        if not sep or not text or "\n\n" in text:
            raise ValueError("a signed note is its text, a blank line, then signature lines")
        signatures = []
        for line in rest.splitlines():
            if not line.startswith(SIGNATURE_PREFIX):
                raise ValueError("a signature line starts with an em dash and a space")
            name, _, encoded = line[len(SIGNATURE_PREFIX):].rpartition(" ")
            blob = base64.b64decode(encoded, validate=True)
            if len(blob) < 5:
                raise ValueError("a note signature holds a key id and a signature")
            signatures.append((name, blob[:4], blob[4:]))
        if not signatures:
            raise ValueError("the note has no signature")
        return cls(text + "\n", signatures)


def _note_text(origin: str, complaints: int, root: str, position: int, events: int, sealed_at: datetime,
               horizon: int | None = None) -> str:
    below = f"horizon {horizon}\n" if horizon is not None else ""
    return (f"{origin}\n{complaints}\n{base64.b64encode(bytes.fromhex(root)).decode()}\n"
            f"position {position}\n{below}events {events}\nsealed {canonical_time(sealed_at)}\n")


def sign_note(text: str, name: str, key: Ed25519PrivateKey) -> str:
    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    blob = key_id(name, raw) + key.sign(text.encode())
    return f"{text}\n{SIGNATURE_PREFIX}{name} {base64.b64encode(blob).decode()}\n"


class Checkpoint(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    position: int
    events: int
    complaints: int
    root: str
    sealed_at: datetime
    public_key: str
    signature: str
    #: The C2SP signed note (None for checkpoints sealed before the note shape).
    note: str | None = None
    #: What it seals: every row whose transaction is below this id (the oldest still running when it was
    #: sealed), a set no later commit can change. None for checkpoints sealed before (they seal the rows at
    #: or before their position, which is the same thing for the rows written then).
    horizon: int | None = None

    @model_serializer(mode="wrap")
    def _without_absent_note(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """A checkpoint sealed before the note shape (or before horizons) serialises as it did, so published
        lines and bundles written then still compare byte for byte."""
        data: dict[str, Any] = handler(self)
        for optional in ("note", "horizon"):
            if data.get(optional) is None:
                data.pop(optional, None)
        return data

    def covers(self) -> tuple[str, list[Any]]:
        """The SQL condition (and its arguments, from $1) on complaint_events rows this checkpoint seals."""
        if self.horizon is not None:
            return "tx < $1::text::xid8", [str(self.horizon)]
        return "position <= $1", [self.position]

    @property
    def origin(self) -> str | None:
        return self.note.split("\n", 1)[0] if self.note else None

    def statement(self) -> bytes:
        """What a checkpoint sealed before the note shape signed: its fields in canonical JSON."""
        return canonical_json({"complaints": self.complaints, "events": self.events, "position": self.position,
                               "root": self.root, "sealed_at": canonical_time(self.sealed_at)})

    def signature_status(self, trusted: TrustedKey | str | None) -> Signature:
        """Verified only by a key the auditor trusts; unchecked without one."""
        if trusted is None:
            return Signature.unchecked
        key = TrustedKey.parse(trusted) if isinstance(trusted, str) else trusted
        verifier = Ed25519PublicKey.from_public_bytes(key.public_key)
        try:
            if self.note is None:
                if key.raw != self.public_key:
                    return Signature.bad
                verifier.verify(_unb64(self.signature), self.statement())
                return Signature.verified
            note = Note.parse(self.note)
            if note.text != _note_text(note.lines[0], self.complaints, self.root, self.position, self.events,
                                       self.sealed_at, self.horizon):
                return Signature.bad  # the note does not say what the row says
            if key.name is not None and key.name != note.lines[0]:
                return Signature.bad  # another deployment's checkpoint
            for name, kid, signature in note.signatures:
                if (key.name in (None, name)) and kid == key_id(name, key.public_key):
                    verifier.verify(signature, note.text.encode())
                    # The row's own copies of the key and the signature must be those of the note: every
                    # byte of a checkpoint is then covered by its signature.
                    if self.public_key != key.raw or self.signature != base64.b64encode(signature).decode():
                        return Signature.bad
                    return Signature.verified
        except (InvalidSignature, ValueError, IndexError):
            return Signature.bad
        return Signature.bad

    def signature_holds(self, trusted: TrustedKey | str | None) -> bool:
        return self.signature_status(trusted) is Signature.verified


Head = tuple[str, int, str]


async def heads_at(conn: asyncpg.Connection, where: Checkpoint | tuple[str, list[Any]]) -> tuple[list[Head], int]:
    """Every complaint's last (sequence, hash) among the rows a checkpoint seals (or that a condition
    selects), by complaint id; and how many rows there are."""
    condition, arguments = where.covers() if isinstance(where, Checkpoint) else where
    rows = await conn.fetch(
        "SELECT DISTINCT ON (complaint_id) complaint_id, sequence, hash FROM complaint_events"
        f" WHERE {condition} ORDER BY complaint_id, sequence DESC", *arguments,
    )
    count = await conn.fetchval(f"SELECT count(*) FROM complaint_events WHERE {condition}", *arguments)
    # Leaves in code point order (UTF-8 byte order), whatever the database's collation: a glibc upgrade or a
    # restore under another locale must not change a root.
    return sorted((r["complaint_id"], r["sequence"], r["hash"]) for r in rows), int(count)


def leaves(heads: Mapping[str, tuple[int, str]]) -> list[Head]:
    """Complaints' (sequence, hash) heads as the checkpoint's leaves: in complaint-id order, as heads_at has them."""
    return sorted((cid, sequence, hash_) for cid, (sequence, hash_) in heads.items())


def root_of(heads: list[Head]) -> str:
    return merkle.root([merkle.leaf_hash(*h) for h in heads]).hex()


class SealRefused(Exception):
    """The stored checkpoint is not the one just signed (planted, or sealed by another key)."""


async def seal(pool: asyncpg.Pool, key: Ed25519PrivateKey, origin: str | None = None) -> Checkpoint:
    """Sign the log as it stands and store the checkpoint through the sealer's function; return it only if
    the stored row is the one signed (or one this key already signed for the same position and root)."""
    name = log_origin(origin)
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        # One snapshot for all of it: the horizon (the oldest transaction still running), and the rows below
        # it, which are committed for good. An append in flight is left to the next checkpoint.
        horizon = int(await conn.fetchval(f"SELECT ({HORIZON})::text::bigint"))
        below = ("tx < $1::text::xid8", [str(horizon)])
        position = int(await conn.fetchval(f"SELECT coalesce(max(position), 0) FROM complaint_events"
                                           f" WHERE {below[0]}", *below[1]))
        heads, events = await heads_at(conn, below)
    root = root_of(heads)
    sealed_at = datetime.now(UTC).replace(microsecond=0)
    note = sign_note(_note_text(name, len(heads), root, position, events, sealed_at, horizon), name, key)
    signature = base64.b64encode(Note.parse(note).signatures[0][2]).decode()
    checkpoint = Checkpoint(position=position, events=events, complaints=len(heads), root=root,
                            sealed_at=sealed_at, public_key=public_key_of(key), signature=signature, note=note,
                            horizon=horizon)
    async with pool.acquire() as conn:
        try:
            await conn.execute("SELECT record_complaint_checkpoint($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                               checkpoint.position, checkpoint.events, checkpoint.complaints, checkpoint.root,
                               checkpoint.sealed_at, checkpoint.public_key, checkpoint.signature, checkpoint.note,
                               checkpoint.horizon)
        except asyncpg.UniqueViolationError:
            pass  # a checkpoint at this position already: compared below, never printed as ours unless it is
        row = await conn.fetchrow("SELECT * FROM complaint_checkpoints WHERE position = $1", position)
    try:
        stored = _checkpoint(row)
    except ValueError as error:
        raise SealRefused(f"the checkpoint stored at position {position} is malformed: {error}") from None
    if stored == checkpoint:
        return checkpoint
    ours = TrustedKey(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw), name)
    if stored.root == root and stored.events == events and stored.signature_holds(ours):
        return stored  # sealed before by this key, at this position: the same commitment
    raise SealRefused(f"a different checkpoint is already stored at position {position}, not signed by this key "
                      "for this log: it was not sealed here, and is not printed for publishing")


def _checkpoint(row: asyncpg.Record) -> Checkpoint:
    data = dict(row)
    data["root"] = str(data["root"]).strip()
    bytes.fromhex(data["root"])  # a root that is not hex is malformed, not merely wrong
    checkpoint = Checkpoint(**data)
    if checkpoint.note is not None:
        Note.parse(checkpoint.note)
    return checkpoint


async def stored_checkpoints(pool: asyncpg.Pool) -> tuple[list[Checkpoint], list[Break]]:
    """The stored checkpoints, and a break naming each row that is not a checkpoint at all (it does not
    hide the others)."""
    async with pool.acquire() as conn:
        rows = await conn.fetch("SELECT * FROM complaint_checkpoints ORDER BY position")
    found, malformed = [], []
    for row in rows:
        try:
            found.append(_checkpoint(row))
        except (ValueError, TypeError) as error:
            malformed.append(Break(complaint_id=f"checkpoint @{row['position']}", sequence=0,
                                   kind="checkpoint_malformed", detail=f"the stored row is not a checkpoint: "
                                                                       f"{str(error)[:200]}"))
    return found, malformed


async def check(pool: asyncpg.Pool, checkpoint: Checkpoint, trusted: TrustedKey | str | None = None) -> list[Break]:
    """Does the log still extend this checkpoint? Signature (against the trusted key), event count,
    complaint count and root."""
    found, _ = await check_heads(pool, checkpoint, trusted)
    return found


async def check_heads(pool: asyncpg.Pool, checkpoint: Checkpoint,
                      trusted: TrustedKey | str | None = None) -> tuple[list[Break], list[Head]]:
    """:func:`check`, and the heads the log has at the checkpoint (what it found, whether or not they hold)."""
    async with pool.acquire() as conn:
        heads, events = await heads_at(conn, checkpoint)
    return held(checkpoint, heads, events, trusted), heads


def held(checkpoint: Checkpoint, heads: list[Head], events: int, trusted: TrustedKey | str | None,
         *, signed_by_trusted: bool = False) -> list[Break]:
    """What breaks a checkpoint, given the heads (in leaf order) and the count of events the log has below it:
    a bad signature (or, ``signed_by_trusted``, any but the trusted key's), other counts, another root."""
    where = f"checkpoint @{checkpoint.position}"
    found = []
    status = checkpoint.signature_status(trusted)
    if status is Signature.bad or (signed_by_trusted and status is not Signature.verified):
        found.append(Break(complaint_id=where, sequence=0, kind="checkpoint_signature",
                           detail="the signature does not hold with the trusted key"))
    if events != checkpoint.events or len(heads) != checkpoint.complaints:
        found.append(Break(complaint_id=where, sequence=0, kind="checkpoint_count",
                           detail=f"sealed {checkpoint.events} events of {checkpoint.complaints} complaints; the "
                                  f"log now has {events} events of {len(heads)} complaints below it"))
    if root_of(heads) != checkpoint.root:
        found.append(Break(complaint_id=where, sequence=0, kind="checkpoint_root",
                           detail="the chain heads below it no longer give the sealed root"))
    return found


async def check_all(pool: asyncpg.Pool, checkpoints: Iterable[Checkpoint], trusted: TrustedKey | str | None = None,
                    ) -> tuple[list[Break], tuple[int, list[Head]] | None]:
    """Every checkpoint checked as :func:`check` does, and the newest one's position and heads.

    Those sealed with a horizon are checked together, in one pass over the log in transaction order: each
    seals the rows below its horizon, a prefix of that order, so one walk gives every checkpoint's heads and
    count as it passes its horizon (a log sealed hourly for a year holds 8,760 checkpoints: a pass over the
    log for each took hours). Those sealed before horizons (rows up to a position) are checked one by one."""
    found: list[Break] = []
    newest: tuple[int, list[Head]] | None = None
    by_horizon = sorted((c for c in checkpoints if c.horizon is not None), key=lambda c: (c.horizon, c.position))
    legacy = [c for c in checkpoints if c.horizon is None]
    for checkpoint in legacy:
        breaks, heads = await check_heads(pool, checkpoint, trusted)
        found += breaks
        if newest is None or checkpoint.position > newest[0]:
            newest = (checkpoint.position, heads)
    if by_horizon:
        async with pool.acquire() as conn:
            async for checkpoint, heads, events in _heads_by_horizon(conn, by_horizon):
                found += held(checkpoint, heads, events, trusted)
                if newest is None or checkpoint.position > newest[0]:
                    newest = (checkpoint.position, heads)
    return found, newest


async def _heads_by_horizon(conn: asyncpg.Connection, checkpoints: list[Checkpoint], page_size: int = 10_000,
                            ) -> AsyncIterator[tuple[Checkpoint, list[Head], int]]:
    """Each of ``checkpoints`` (in horizon order) with the heads and the count of events below its horizon,
    as :func:`heads_at` gives them (a complaint's head is its highest sequence there), from one snapshot."""
    pending = list(checkpoints)
    heads: dict[str, tuple[int, str]] = {}
    events = 0

    async with conn.transaction(isolation="repeatable_read", readonly=True):
        rows = await conn.cursor("SELECT complaint_id, sequence, hash, tx::text::bigint FROM complaint_events"
                                 " WHERE tx < $1::text::xid8 ORDER BY tx, position", str(pending[-1].horizon))
        while page := await rows.fetch(page_size):
            for complaint_id, sequence, hash_, tx in page:
                while pending and tx >= (pending[0].horizon or 0):
                    yield pending.pop(0), leaves(heads), events
                head = heads.get(complaint_id)
                if head is None or sequence > head[0]:
                    heads[complaint_id] = (sequence, hash_)
                events += 1
        while pending:
            yield pending.pop(0), leaves(heads), events
