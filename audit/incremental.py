"""``complaints verify --all --log-only --since-checkpoint``: verify only what was appended since the newest
checkpoint this auditor already verified, in time proportional to that.

A full ``verify --all`` that finds nothing broken, with the seal's public key trusted, keeps what it proved
in a state file (COMPLAINTS_VERIFY_STATE, else ``~/.cache/complaints/verified-<origin>.json``): the newest
checkpoint, and every complaint's chain head at it. The incremental run then proves:

- that checkpoint is still stored as it was, and its signature holds with the trusted key;
- every sealed head is still in the log with the hash it had (a chain rewritten before the checkpoint, even
  consistently from the edit down, changes its head: caught here, by index lookups, without rehashing);
- every event since continues its complaint's chain from the sealed head (or from genesis, for a complaint
  new since), hash recomputed, gapless;
- every checkpoint sealed since gives its signed root and counts from those heads and events.

What it cannot see: an edit before the checkpoint that leaves its chain inconsistent and its head alone (a
payload changed, no hash recomputed). A full verify finds that; run one on a schedule. The state then moves
to the newest checkpoint verified.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from dataclasses import dataclass
from pathlib import Path

import orjson

from audit import checkpoints as cp
from audit.parts import bulk
from audit.verify import Progress, Verification
from domain.chain import Break, Chains
from eventlog import Cursor, PostgresEventStore
from eventlog.store import TX

STATE_ENV = "COMPLAINTS_VERIFY_STATE"
#: Larger than any position: with a horizon's tx - 1, a cursor before every row at or above the horizon.
_END = 2**62


class NoVerifiedCheckpoint(Exception):
    """Nothing to start from: run a full verify first (with the trusted key), or the state is unusable."""


@dataclass
class VerifiedState:
    """What a verify proved last: a checkpoint, and every complaint's (sequence, hash) at it."""

    checkpoint: cp.Checkpoint
    heads: dict[str, tuple[int, str]]

    def to_json(self) -> str:
        """The heads as three columns in complaint order (read back in a tenth of what a mapping of pairs took:
        the file is read by every incremental run)."""
        ids = sorted(self.heads)
        return orjson.dumps({"checkpoint": self.checkpoint.model_dump(mode="json"), "complaints": ids,
                             "sequences": [self.heads[cid][0] for cid in ids],
                             "hashes": [self.heads[cid][1] for cid in ids]}).decode()

    @classmethod
    def of(cls, checkpoint: cp.Checkpoint, leaves: list[cp.Head]) -> VerifiedState:
        """From the checkpoint's leaves (what heads_at gives)."""
        return cls(checkpoint, {cid: (sequence, hash_) for cid, sequence, hash_ in leaves})

    @classmethod
    def from_json(cls, text: str) -> VerifiedState:
        with bulk():
            data = orjson.loads(text)
            checkpoint = cp.Checkpoint.model_validate(data["checkpoint"])
            if "heads" in data:  # written before the columns
                return cls(checkpoint, {cid: (int(sequence), str(hash_))
                                        for cid, (sequence, hash_) in data["heads"].items()})
            ids, sequences, hashes = data["complaints"], data["sequences"], data["hashes"]
            if not (len(ids) == len(sequences) == len(hashes)) or not all(isinstance(s, int) for s in sequences):
                raise ValueError("the heads' columns do not line up")
            if not all(isinstance(cid, str) for cid in ids) or not all(isinstance(h, str) for h in hashes):
                raise ValueError("a complaint id or a hash is not text")
            return cls(checkpoint, dict(zip(ids, zip(sequences, hashes, strict=True), strict=True)))


def state_path(origin: str | None) -> Path:
    explicit = os.environ.get(STATE_ENV)
    if explicit:
        return Path(explicit)
    name = hashlib.sha256((origin or "").encode()).hexdigest()[:16]
    return Path.home() / ".cache" / "complaints" / f"verified-{name}.json"


def save(state: VerifiedState, path: Path) -> None:
    """Written whole, then renamed: a run interrupted half-way leaves the previous state."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    partial.write_text(state.to_json(), encoding="utf-8")
    partial.replace(path)


def load(path: Path) -> VerifiedState:
    if not path.is_file():
        raise NoVerifiedCheckpoint(f"no verified checkpoint at {path}: run `complaints verify --all` with the "
                                   "trusted public key first")
    try:
        return VerifiedState.from_json(path.read_text(encoding="utf-8"))
    except (ValueError, KeyError, TypeError) as error:
        raise NoVerifiedCheckpoint(f"{path} is not a verified checkpoint: {error}") from None


async def state_at(store: PostgresEventStore, checkpoint: cp.Checkpoint) -> VerifiedState:
    """The heads at ``checkpoint`` (one pass over what it seals: after a full verify proved it)."""
    async with store.pool.acquire() as conn:
        heads, _ = await cp.heads_at(conn, checkpoint)
    return VerifiedState.of(checkpoint, heads)


async def verify_since(store: PostgresEventStore, state: VerifiedState, trusted: str,
                       progress: Progress | None = None) -> tuple[Verification, VerifiedState]:
    """Prove what was appended since ``state``'s checkpoint; returns the verification and the state to keep
    next (the newest checkpoint verified now, or the same one)."""
    started = time.perf_counter()
    result = Verification()
    sealed = state.checkpoint
    where = f"checkpoint @{sealed.position}"
    stored, malformed = await cp.stored_checkpoints(store.pool)
    result.checkpoint_breaks += malformed
    mine = next((c for c in stored if c.position == sealed.position), None)
    if mine != sealed:
        result.checkpoint_breaks.append(Break(complaint_id=where, sequence=0, kind="checkpoint_withdrawn",
                                              detail="the checkpoint verified last is missing or differs now"))
    if sealed.signature_status(trusted) is not cp.Signature.verified:
        result.checkpoint_breaks.append(Break(complaint_id=where, sequence=0, kind="checkpoint_signature",
                                              detail="the signature does not hold with the trusted key"))
    # Looked up by PostgreSQL while this process checks what was appended since.
    unchanged = asyncio.ensure_future(_sealed_heads_unchanged(store, state))

    try:
        newer = sorted((c for c in stored if c.position > sealed.position and c.horizon is not None),
                       key=lambda c: c.position)
        chains = Chains(state.heads)
        events = sealed.events
        kept = state
        async for page in store.pages(await _after(store, sealed)):
            rows = list(page)
            while rows:
                horizon = (newer[0].horizon or 0) if newer else None
                below = rows if horizon is None else [r for r in rows if r[TX] < horizon]
                chains.feed(below)
                events += len(below)
                if progress and below:
                    progress(len(below))
                if len(below) == len(rows):
                    break
                kept = _check_newer(result, newer.pop(0), chains.pairs(), events, trusted) or kept
                rows = rows[len(below):]
        while newer:
            kept = _check_newer(result, newer.pop(0), chains.pairs(), events, trusted) or kept
    except BaseException:
        unchanged.cancel()
        raise
    result.checkpoint_breaks += await unchanged
    for cid, count in chains.events.items():
        check = result.complaint(cid)
        check.events, check.breaks = count, chains.breaks(cid)
    result.checkpoints = 1 + sum(1 for c in stored if c.position > sealed.position)
    result.seconds = time.perf_counter() - started
    return result, (kept if result.ok else state)


def _check_newer(result: Verification, checkpoint: cp.Checkpoint, heads: dict[str, tuple[int, str]], events: int,
                 trusted: str) -> VerifiedState | None:
    """A checkpoint sealed since: signed by the trusted key, its root and counts from the heads and events below
    its horizon."""
    leaves = cp.leaves(heads)
    found = cp.held(checkpoint, leaves, events, trusted, signed_by_trusted=True)
    result.checkpoint_breaks += found
    return None if found else VerifiedState.of(checkpoint, leaves)


async def _after(store: PostgresEventStore, checkpoint: cp.Checkpoint) -> Cursor:
    """The cursor just before the first row the checkpoint does not seal."""
    if checkpoint.horizon is not None:
        return Cursor(checkpoint.horizon - 1, _END)
    async with store.pool.acquire() as conn:  # sealed before horizons: its rows share the migration's tx
        tx = await conn.fetchval("SELECT tx::text::bigint FROM complaint_events WHERE position = $1",
                                 checkpoint.position)
    return Cursor(int(tx or 0), checkpoint.position)


async def _sealed_heads_unchanged(store: PostgresEventStore, state: VerifiedState, parts: int = 2) -> list[Break]:
    """Every head the checkpoint sealed is still in the log with its hash: an index lookup each, in PostgreSQL
    (index-only: the hash is in the primary key's index, migration 014),
    which hands back only those that differ (a join let the planner hash the whole table instead), in
    ``parts`` queries side by side (a backend each). The heads go as lines of text, split by PostgreSQL:
    asyncpg encodes a list element by element."""
    ids = sorted(state.heads)
    share = -(-len(ids) // parts) or 1
    found = await asyncio.gather(*(_heads_differing(store, state, ids[n:n + share])
                                   for n in range(0, len(ids), share)))
    return [b for part in found for b in part]


async def _heads_differing(store: PostgresEventStore, state: VerifiedState, ids: list[str]) -> list[Break]:
    if any("\n" in cid for cid in ids):  # never a complaint id (domain.values): then as lists all the same
        values: tuple[object, ...] = (ids, [state.heads[cid][0] for cid in ids], [state.heads[cid][1] for cid in ids])
        heads = "unnest($1::text[], $2::integer[], $3::text[])"
    else:
        values = ("\n".join(ids), ",".join(str(state.heads[cid][0]) for cid in ids),
                  ",".join(state.heads[cid][1] for cid in ids))
        heads = ("unnest(string_to_array($1::text, E'\\n'), string_to_array($2::text, ',')::integer[],"
                 " string_to_array($3::text, ','))")
    async with store.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT complaint_id, hash FROM (SELECT s.complaint_id, s.sealed, (SELECT e.hash FROM complaint_events e"
            f"  WHERE e.complaint_id = s.complaint_id AND e.sequence = s.sequence) AS hash"
            f"  FROM {heads} AS s(complaint_id, sequence, sealed)) AS looked WHERE hash IS DISTINCT FROM sealed",
            *values)
    found = []
    for row in rows:
        sequence, _ = state.heads[row["complaint_id"]]
        found.append(Break(complaint_id=row["complaint_id"], sequence=sequence, kind="sealed_head_changed",
                           detail="the event the checkpoint sealed as this complaint's head is "
                                  + ("gone" if row["hash"] is None else "not the one sealed")))
    return found
