"""The hash chain: each recorded event commits to the one before it.

``hash = sha256(bytes.fromhex(prev_hash) || canonical_bytes(envelope without hashes))``.

Canonical bytes are JSON with keys sorted, no insignificant white space, UTF-8 unescaped, and
``occurred_at`` as ``YYYY-MM-DDTHH:MM:SS.ffffffZ``. Payloads hold only strings, integers, booleans,
nulls, lists and objects (money is integer minor units; no event has a float field), so what
PostgreSQL's jsonb gives back (keys reordered, white space changed) canonicalises to the same bytes: an
auditor recomputes every hash from the stored row alone. A float slipped into a row by hand
canonicalises differently (``1.0`` is not ``1``), so such an edit breaks the chain, as it should.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field

from domain.events import Event, replaced

#: The prev_hash of a complaint's first event.
GENESIS = "0" * 64


def canonical_json(value: Any) -> bytes:
    """Sorted keys, compact, UTF-8. orjson escapes exactly what ``json.dumps(ensure_ascii=False)`` does
    (``"``, ``\\``, and U+0000..U+001F) and writes the rest as UTF-8, so the two agree byte for byte."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def canonical_time(value: datetime) -> str:
    """One spelling for an instant: UTC, microseconds, ``Z``."""
    if value.tzinfo is UTC and value.year >= 1000:  # as the log reads them back: the quickest way
        return value.isoformat(timespec="microseconds")[:-6] + "Z"
    if value.tzinfo is None:
        raise ValueError("occurred_at must be timezone-aware")
    utc = value.astimezone(UTC)
    if 1000 <= utc.year:  # isoformat is C and quick; it writes the same bytes as the strftime below here
        return utc.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"
    return utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ")  # (glibc writes years before 1000 unpadded: kept as it was)


def canonical_bytes(
    *,
    complaint_id: str,
    sequence: int,
    type: str,
    schema_version: int,
    occurred_at: datetime,
    actor: str,
    payload: dict[str, Any],
) -> bytes:
    """What a hash covers: the envelope less its hashes, positions and bookkeeping."""
    return canonical_json(
        {
            "actor": actor,
            "complaint_id": complaint_id,
            "occurred_at": canonical_time(occurred_at),
            "payload": payload,
            "schema_version": schema_version,
            "sequence": sequence,
            "type": type,
        }
    )


def link(prev_hash: str, body: bytes) -> str:
    return hashlib.sha256(bytes.fromhex(prev_hash) + body).hexdigest()


class ChainHead(BaseModel):
    """The last link: what the workflow holds, so the log and Temporal can be compared as two witnesses."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sequence: int = 0
    hash: str = GENESIS

    @staticmethod
    def of(sequence: int, hash: str) -> ChainHead:
        """A head from values validated already (a record's), copied as :func:`domain.events.replaced` copies:
        validating them again, or pydantic's generic ``model_construct``, cost more than the rest of a fold
        step."""
        return replaced(_ORIGIN, {"sequence": sequence, "hash": hash})


_ORIGIN = ChainHead()


class Draft(BaseModel):
    """An event on its way to the log: typed, versioned and attributed, not yet numbered or chained."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: str
    schema_version: int
    actor: str
    payload: dict[str, Any]

    @classmethod
    def of(cls, event: Event, actor: str) -> Draft:
        return cls(
            type=type(event).__name__,
            schema_version=event.version,
            actor=actor,
            payload=event.model_dump(mode="json"),
        )


class Recorded(BaseModel):
    """An event as the log holds it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    complaint_id: str
    sequence: int = Field(ge=1)
    type: str
    schema_version: int
    occurred_at: datetime
    actor: str
    payload: dict[str, Any]
    prev_hash: str
    hash: str

    def body(self) -> bytes:
        return canonical_bytes(
            complaint_id=self.complaint_id,
            sequence=self.sequence,
            type=self.type,
            schema_version=self.schema_version,
            occurred_at=self.occurred_at,
            actor=self.actor,
            payload=self.payload,
        )

    def computed_hash(self) -> str:
        return link(self.prev_hash, self.body())

    def row(self) -> tuple[Any, ...]:
        """Its fields as a stored row gives them (ROW_FIELDS order): what :class:`Chains` and the folds take."""
        return (self.complaint_id, self.sequence, self.type, self.schema_version, self.occurred_at, self.actor,
                self.payload, self.prev_hash, self.hash)

    @property
    def head(self) -> ChainHead:
        return ChainHead.of(self.sequence, self.hash)


def chain(head: ChainHead, complaint_id: str, occurred_at: datetime, drafts: Sequence[Draft]) -> list[Recorded]:
    """Number and link drafts after ``head``. Pure: the same inputs give the same hashes, so a retried
    append can be told apart from a divergent one by comparing hashes."""
    records: list[Recorded] = []
    prev = head
    for draft in drafts:
        sequence = prev.sequence + 1
        body = canonical_bytes(
            complaint_id=complaint_id,
            sequence=sequence,
            type=draft.type,
            schema_version=draft.schema_version,
            occurred_at=occurred_at,
            actor=draft.actor,
            payload=draft.payload,
        )
        record = Recorded(
            complaint_id=complaint_id,
            sequence=sequence,
            type=draft.type,
            schema_version=draft.schema_version,
            occurred_at=occurred_at,
            actor=draft.actor,
            payload=draft.payload,
            prev_hash=prev.hash,
            hash=link(prev.hash, body),
        )
        records.append(record)
        prev = record.head
    return records


class Break(BaseModel):
    """One way a stored chain fails to hold: which complaint, at which sequence, what kind of break."""

    model_config = ConfigDict(frozen=True)

    complaint_id: str
    sequence: int
    kind: str
    detail: str

    def __str__(self) -> str:
        return f"{self.complaint_id} #{self.sequence}: {self.kind}: {self.detail}"


class ChainWalker:
    """Checks one complaint's records one at a time, in stored order: gapless from 1, every hash
    recomputed, every link held. Holds only the head, so a whole log can be walked by global position."""

    def __init__(self, complaint_id: str, head: ChainHead | None = None) -> None:
        """From ``head`` (a head verified before, sealed in a checkpoint), or from genesis."""
        self.complaint_id = complaint_id
        self.head = head or ChainHead()
        self.events = 0
        self.breaks: list[Break] = []

    def _break(self, sequence: int, kind: str, detail: str) -> None:
        self.breaks.append(Break(complaint_id=self.complaint_id, sequence=sequence, kind=kind, detail=detail))

    def step(self, record: Recorded) -> None:
        self.events += 1
        if record.complaint_id != self.complaint_id:
            self._break(record.sequence, "foreign_event", f"belongs to {record.complaint_id}")
            return
        expected = self.head.sequence + 1
        if record.sequence != expected:
            kind = "gap" if record.sequence > expected else "out_of_order"
            self._break(record.sequence, kind, f"expected sequence {expected}")
        if record.prev_hash != self.head.hash:
            self._break(record.sequence, "broken_link",
                        f"prev_hash {record.prev_hash[:12]} does not match {self.head.hash[:12]}")
        try:
            actual = record.computed_hash()
        except (ValueError, TypeError) as error:  # a hash that is not hex, a time without a zone...
            self._break(record.sequence, "malformed_row", str(error))
        else:
            if actual != record.hash:
                self._break(record.sequence, "hash_mismatch", f"stored {record.hash[:12]}, recomputed {actual[:12]}")
        self.head = record.head


#: The columns of a stored event, in the order readers hand rows to :class:`Chains` (and :func:`recorded`).
ROW_FIELDS = ("complaint_id", "sequence", "type", "schema_version", "occurred_at", "actor", "payload", "prev_hash",
              "hash")


def recorded(row: Sequence[Any]) -> Recorded:
    """A stored row (ROW_FIELDS order) as a record. A row is evidence, checked by the chain, not by a schema:
    one that does not fit the model is still taken as it is. (Validated first, field by field from the row,
    because pydantic-core validates these fields faster than ``model_construct`` copies them.)"""
    try:
        return Recorded(complaint_id=row[0], sequence=row[1], type=row[2], schema_version=row[3],
                        occurred_at=row[4], actor=row[5], payload=row[6], prev_hash=row[7], hash=row[8])
    except (ValueError, IndexError):  # pydantic's ValidationError; a short row
        return Recorded.model_construct(**dict(zip(ROW_FIELDS, row, strict=False)))


#: Where a row may carry its ``occurred_at`` already spelled canonically (after ROW_FIELDS and the reader's
#: transaction and position): the log's readers have PostgreSQL spell it (eventlog.store.CANONICAL_AT), so the
#: check does not format an instant per batch. A spelling that is wrong only fails the quick path: the row is
#: then walked from its own columns.
CANONICAL_AT = len(ROW_FIELDS) + 2


class Chains:
    """Many complaints' chains checked together from rows in global order (each complaint's rows in sequence
    order, among the others'), holding only each complaint's head, so a whole log is checked in one pass.

    A row that continues its chain exactly costs one canonicalisation and one hash and builds nothing (a
    batch's events share their time, spelled once, or by the reader); from the first row of a complaint that
    does not, a :class:`ChainWalker` takes that complaint over and names every break from there."""

    def __init__(self, heads: Mapping[str, tuple[int, str]] | None = None) -> None:
        """From ``heads``, (sequence, hash) pairs verified before (sealed in a checkpoint), or every complaint
        from genesis."""
        self._heads: dict[str, tuple[int, str]] = dict(heads or {})
        self._start = {cid: sequence for cid, (sequence, _) in self._heads.items()}
        self._walkers: dict[str, ChainWalker] = {}
        self._walked: dict[str, int] = {}  # rows that held before a complaint's walker took over

    @property
    def events(self) -> dict[str, int]:
        """Rows fed per complaint. (On the quick path every row moves its complaint's head on by one, so the
        count is the head's distance from where it started, and nothing is counted per row.)"""
        start = self._start
        counts = {cid: sequence - start.get(cid, 0) for cid, (sequence, _) in self._heads.items()
                  if sequence != start.get(cid, 0)}
        for cid, walker in self._walkers.items():
            counts[cid] = self._walked[cid] + walker.events
        return counts

    def feed(self, rows: Iterable[Sequence[Any]]) -> None:
        """Check ``rows``: sequences in ROW_FIELDS order (what comes after those is ignored, but for a canonical
        spelling of the time at CANONICAL_AT, used where present).

        The head of the complaint being read is held in locals and written back when another complaint's row
        comes (the readers hand a complaint's rows one after another: one lookup per complaint, not per row)."""
        heads, walkers = self._heads, self._walkers
        sha256, fromhex, dumps, sort = hashlib.sha256, bytes.fromhex, orjson.dumps, orjson.OPT_SORT_KEYS
        genesis = (0, GENESIS)
        at: Any = None
        when = ""
        current: str | None = None  # whose head ``sequence`` and ``prev`` hold, not yet written back
        sequence, prev = genesis
        envelope: dict[str, Any] = {}  # what the hash covers, refilled for each row (building a dict cost more)
        try:
            for row in rows:
                cid = row[0]
                if cid != current:
                    if current is not None:
                        heads[current] = (sequence, prev)
                        current = None
                    if walkers and cid in walkers:
                        walkers[cid].step(recorded(row))
                        continue
                    sequence, prev = heads.get(cid, genesis)
                    current = cid
                try:
                    number = row[1]
                    if number == sequence + 1 and row[7] == prev:
                        if row[4] != at or at is None:
                            at = row[4]
                            when = row[CANONICAL_AT] if len(row) > CANONICAL_AT else canonical_time(at)
                        envelope["actor"] = row[5]
                        envelope["complaint_id"] = cid
                        envelope["occurred_at"] = when
                        envelope["payload"] = row[6]
                        envelope["schema_version"] = row[3]
                        envelope["sequence"] = number
                        envelope["type"] = row[2]
                        link = sha256(fromhex(prev))
                        link.update(dumps(envelope, option=sort))
                        if link.hexdigest() == row[8]:
                            sequence, prev = number, row[8]
                            continue
                except (ValueError, TypeError, AttributeError, orjson.JSONEncodeError):
                    pass
                # From here on, this complaint's rows are walked one by one, to name every break.
                at = current = None
                self._walked[cid] = sequence - self._start.get(cid, 0)
                walker = walkers[cid] = ChainWalker(cid, ChainHead(sequence=sequence, hash=prev))
                walker.step(recorded(row))
        finally:  # a row that raises still leaves the heads reached
            if current is not None:
                heads[current] = (sequence, prev)

    def head(self, complaint_id: str) -> ChainHead:
        walker = self._walkers.get(complaint_id)
        if walker is not None:
            return walker.head
        sequence, hash = self._heads.get(complaint_id, (0, GENESIS))
        return ChainHead(sequence=sequence, hash=hash)

    def heads(self) -> dict[str, ChainHead]:
        """Every complaint's head: those given at the start and those reached."""
        return {cid: self.head(cid) for cid in self._heads.keys() | self._walkers.keys()}

    def pairs(self) -> dict[str, tuple[int, str]]:
        """:meth:`heads` as (sequence, hash) pairs, building no model for each."""
        pairs = dict(self._heads)
        pairs.update({cid: (w.head.sequence, w.head.hash) for cid, w in self._walkers.items()})
        return pairs

    def breaks(self, complaint_id: str) -> list[Break]:
        walker = self._walkers.get(complaint_id)
        return list(walker.breaks) if walker is not None else []


def check_chain(complaint_id: str, records: Iterable[Recorded]) -> tuple[ChainHead, list[Break]]:
    """Walk a complaint's records in stored order. Returns the head reached and every break found (empty
    when the chain verifies). The records are checked as :class:`Chains` checks rows; one of another
    complaint makes the :class:`ChainWalker` walk them all, to name it."""
    records = list(records)
    if all(r.complaint_id == complaint_id for r in records):
        chains = Chains()
        chains.feed([r.row() for r in records])
        return chains.head(complaint_id), chains.breaks(complaint_id)
    walker = ChainWalker(complaint_id)
    for record in records:
        walker.step(record)
    return walker.head, walker.breaks
