"""The event store port and its PostgreSQL adapter."""

from __future__ import annotations

import abc
import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from domain.chain import GENESIS, ROW_FIELDS, ChainHead, Recorded, recorded
from eventlog.connect import CONNECTION_ERRORS
from eventlog.errors import BrokenChain, DivergentHistory, EventLogError, EventLogUnavailable


@dataclass(frozen=True, order=True)
class Cursor:
    """A place in the global order: (the writing transaction's id, the row's position). Readers in global
    order see only rows whose transaction is below the oldest one still running, so every row before a
    cursor is there for good: a reader that has passed it never meets an earlier one later."""

    tx: int = 0
    position: int = 0


#: Before the first row.
START = Cursor()


@dataclass(frozen=True)
class Part:
    """Some of the log's complaints: those whose ids lie in [low, high) (None: no bound on that side)."""

    low: str | None = None
    high: str | None = None


@dataclass(frozen=True)
class StoredBatch:
    """What one append stored: its records, the workflow run that appended them, and the update whose handler
    decided them (None: the workflow's own decision)."""

    records: list[Recorded]
    run_id: str
    update_id: str | None = None

#: A row as :meth:`EventStore.pages` hands it out: the record's fields in ROW_FIELDS order, then the writing
#: transaction and the position (indexes TX and POSITION).
Row = Sequence[Any]
TX, POSITION = len(ROW_FIELDS), len(ROW_FIELDS) + 1


@dataclass(frozen=True)
class Positioned:
    """A record with its place in the global order: what catch-up readers page through."""

    position: int
    record: Recorded
    tx: int = 0

    @property
    def cursor(self) -> Cursor:
        return Cursor(self.tx, self.position)


#: The oldest transaction still running: every row written below it is committed (or gone) for good.
HORIZON = "pg_snapshot_xmin(pg_current_snapshot())"


class EventStore(abc.ABC):
    """Where recorded events live. Appends are idempotent per (complaint_id, sequence)."""

    @abc.abstractmethod
    async def append(self, records: Sequence[Recorded], *, workflow_id: str = "", run_id: str = "",
                     update_id: str | None = None) -> int:
        """Store a chained batch of one complaint's events; returns how many were new (0 on a retry).
        ``update_id`` names the update whose handler decided it (None: the workflow's own decision).
        Raises DivergentHistory when a different event is stored at one of the sequences, BrokenChain when
        the batch does not continue the stored chain."""

    @abc.abstractmethod
    async def read(
        self, complaint_id: str, *, after: int = 0, upto: int | None = None, limit: int | None = None
    ) -> list[Recorded]:
        """One complaint's records in sequence order."""

    @abc.abstractmethod
    async def read_all(self, after: Cursor = START, limit: int = 1000) -> list[Positioned]:
        """Every complaint's records in global order, after a cursor: only those no transaction still running
        can precede (see :class:`Cursor`)."""

    @abc.abstractmethod
    async def end(self) -> Cursor:
        """The cursor of the last record a reader in global order can see now (START for an empty log)."""

    async def max_position(self) -> int:
        """The highest position a reader in global order can see now (0 for an empty log)."""
        return (await self.end()).position

    async def head(self, complaint_id: str) -> ChainHead:
        records = await self.read(complaint_id)
        return records[-1].head if records else ChainHead()

    async def stored_from(self, complaint_id: str, first: int) -> StoredBatch | None:
        """The batch one append stored starting at sequence ``first`` (all of it, and only it), with the run
        and the update that decided it; None when no append starts there (or where the store does not know
        its appends)."""
        return None

    async def writer_runs(self, complaint_id: str) -> list[str]:
        """The workflow runs that appended the complaint's events, in the order they first wrote (none where
        the store does not record runs): the runs whose histories witness the log."""
        return []

    async def scan(self, after: Cursor = START, page: int = 5000) -> AsyncIterator[Positioned]:
        """Page through the whole log in global order. The next page is asked for before this one is
        handed out, so PostgreSQL reads it while the caller works."""
        batch = await self.read_all(after, page)
        while batch:
            upcoming = asyncio.ensure_future(self.read_all(batch[-1].cursor, page))
            await asyncio.sleep(0)  # let the query go out now
            try:
                for item in batch:
                    yield item
            except BaseException:
                upcoming.cancel()
                raise
            batch = await upcoming


    async def pages(self, after: Cursor = START, page: int = 5000) -> AsyncIterator[Sequence[Row]]:
        """The whole log in global order, page by page, as rows: a record's fields in ROW_FIELDS order, then
        the row's transaction and position (:data:`Row`). For readers of millions of events that need no
        model per event (verify, the report's scan). PostgreSQL's store asks for the next page before it hands
        out this one."""
        batch = await self.read_all(after, page)
        while batch:
            yield [(*item.record.row(), item.tx, item.position) for item in batch]
            batch = await self.read_all(batch[-1].cursor, page)



def check_batch(records: Sequence[Recorded]) -> None:
    """A batch is one complaint's consecutive, linked records whose hashes match their content."""
    first = records[0]
    if first.sequence == 1 and first.prev_hash != GENESIS:
        raise BrokenChain(f"{first.complaint_id} #1 must follow the genesis hash")
    prev: Recorded | None = None
    for record in records:
        if record.complaint_id != first.complaint_id:
            raise BrokenChain("a batch holds one complaint's events")
        if prev is not None and (record.sequence != prev.sequence + 1 or record.prev_hash != prev.hash):
            raise BrokenChain(f"{record.complaint_id} #{record.sequence} does not follow #{prev.sequence}")
        if record.computed_hash() != record.hash:
            raise BrokenChain(f"{record.complaint_id} #{record.sequence}: hash does not match its content")
        prev = record


_COLUMNS = ", ".join(ROW_FIELDS)
#: The rows readers in bulk get: a record's fields (ROW_FIELDS), the transaction and position, then the time
#: spelled as the hash covers it (domain.chain.CANONICAL_AT), by PostgreSQL: formatting an instant costs Python
#: about as much as hashing an event does.
_PLACE = "tx::text::bigint AS tx_id, position"
_ROWS = f"""{_COLUMNS}, {_PLACE}, to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS at"""
#: The rows a fold reads in bulk: a record's fields alone, the payload as its JSON text (which
#: domain.events.parse_event reads into its event in one pass).
_FOLDED = ", ".join("payload::text AS payload" if f == "payload" else f for f in ROW_FIELDS)


def to_record(row: asyncpg.Record | dict[str, Any]) -> Recorded:
    """A row (by column name) as a record: see :func:`domain.chain.recorded`."""
    return recorded([row[name] for name in ROW_FIELDS])


class PostgresEventStore(EventStore):
    """The log in PostgreSQL (see migrations/001_complaint_events.sql). asyncpg errors are translated here
    and nowhere else."""

    #: Calls of one store's appends under way at once. With one, the worker's Python and PostgreSQL take
    #: turns (one builds a call while the other waits for it); with two, one call is built and answered
    #: while the other runs. Measured with 8 and 32 complaints appending at once (bench/appends.py).
    in_flight = 2
    #: The most appends one call takes together (those waiting beyond go in the next call).
    most_together = 100

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self._waking: asyncio.Task[None] | None = None
        self._wake_again = False
        self._waiting: list[_Append] = []
        self._appending: set[asyncio.Task[None]] = set()

    async def append(self, records: Sequence[Recorded], *, workflow_id: str = "", run_id: str = "",
                     update_id: str | None = None) -> int:
        """At most :attr:`in_flight` calls at once per store: an append that arrives while they are under way
        waits, with every other that arrives meanwhile, and they go together in the next call (one round
        trip, one commit; migrations/015_appends_together.sql). An append alone goes at once. Each caller
        gets its own batch's answer, as if it had appended alone: a refused batch is refused, the others are
        stored."""
        if not records:
            return 0
        check_batch(records)
        waiting = _Append(records, workflow_id, run_id, update_id, asyncio.get_running_loop().create_future())
        self._waiting.append(waiting)
        if len(self._appending) < self.in_flight:
            self._appending.add(asyncio.get_running_loop().create_task(self._append_waiting()))
        return await waiting.answer

    async def _append_waiting(self) -> None:
        """Append what waits, call after call, on one connection while there is more (a connection handed
        back to the pool is reset: a round trip of its own), until nothing waits."""
        try:
            while self._waiting:
                try:
                    conn = await self.pool.acquire()
                except CONNECTION_ERRORS as error:
                    for append in self._take(len(self._waiting)):
                        _answer(append.answer, error=_caused(EventLogUnavailable(str(error)), error))
                else:
                    try:
                        while self._waiting and not conn.is_closed():  # a broken one: the next call gets another
                            await self._append_together(conn, self._take(self.most_together))
                    finally:
                        with contextlib.suppress(*CONNECTION_ERRORS):  # the pool drops one it cannot reset
                            await self.pool.release(conn)
        finally:
            self._appending.difference_update({asyncio.current_task()})
            for append in self._take(len(self._waiting)):  # only when this task was cancelled (its loop closing)
                append.answer.cancel()

    def _take(self, most: int) -> list[_Append]:
        taken, self._waiting[:most] = self._waiting[:most], []
        return [a for a in taken if not a.answer.done()]  # not those given up on

    async def _append_together(self, conn: asyncpg.Connection, appends: list[_Append]) -> None:
        """Answer each append: its batch's new events, or its error. In one call when there are several; when
        that call is refused, each batch alone, in order, so that only the batches at fault are refused."""
        try:
            if len(appends) > 1:
                appends.sort(key=lambda a: a.records[0].complaint_id)  # stable: a complaint's batches keep order
                try:
                    counts = await self.append_together_on(conn, [(a.records, a.workflow_id, a.run_id, a.update_id)
                                                                  for a in appends])
                except Exception:  # noqa: BLE001 -- each alone, below, answers its caller with its own error
                    pass
                else:
                    for append, written in zip(appends, counts, strict=True):
                        _answer(append.answer, written)
                    if any(counts):
                        self._wake()
                    return
            for append in appends:
                await self._append_alone(conn, append)
        except BaseException:
            for append in appends:
                append.answer.cancel()
            raise

    async def _append_alone(self, conn: asyncpg.Connection, append: _Append) -> None:
        try:
            async with contextlib.AsyncExitStack() as stack:
                if conn.is_closed():  # the call together lost it
                    conn = await stack.enter_async_context(self.pool.acquire())
                written = await self.append_on(conn, append.records, workflow_id=append.workflow_id,
                                               run_id=append.run_id, update_id=append.update_id)
        except CONNECTION_ERRORS as error:
            _answer(append.answer, error=_caused(EventLogUnavailable(str(error)), error))
        except asyncpg.PostgresError as error:
            _answer(append.answer, error=_caused(_translate(error), error))
        except Exception as error:  # noqa: BLE001 -- raised to its caller, as if it had appended alone
            _answer(append.answer, error=error)
        else:
            _answer(append.answer, written)
            if written:
                self._wake()

    def _wake(self) -> None:
        """Wake the log's consumers once the append has committed, without the append waiting for it: one
        NOTIFY at most every WAKE_EVERY seconds per store, for every append committed meanwhile. Under load
        many appends share a notification (each is a round trip, Python's time on the worker and a turn at the
        cluster's notification lock), and an append costs one round trip, not two."""
        if self._waking is not None:
            self._wake_again = True
            return
        self._waking = asyncio.get_running_loop().create_task(self._notify_until_quiet())

    async def _notify_until_quiet(self) -> None:
        try:
            while True:
                await asyncio.sleep(WAKE_EVERY)  # the appends that commit meanwhile share this one
                self._wake_again = False
                with contextlib.suppress(*CONNECTION_ERRORS, asyncpg.InterfaceError):
                    async with self.pool.acquire() as conn:
                        await _notify(conn)
                if not self._wake_again:
                    return
        finally:
            self._waking = None

    @staticmethod
    async def append_on(conn: asyncpg.Connection, records: Sequence[Recorded], *, workflow_id: str = "",
                        run_id: str = "", update_id: str | None = None) -> int:
        """The append on ``conn``, in whatever transaction it is in (a test holds one open)."""
        written: int = await conn.fetchval(
            "SELECT append_complaint_events($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            records[0].complaint_id,
            *_event_columns(records),
            workflow_id,
            run_id,
            update_id,
        )
        return written

    @staticmethod
    async def append_together_on(conn: asyncpg.Connection,
                                 batches: Sequence[tuple[Sequence[Recorded], str, str, str | None]]) -> list[int]:
        """Several appends, each (records, workflow id, run id, update id), in one call on ``conn``: how many
        events of each were new. Any refusal raises, and nothing of the call is stored."""
        events = [r for records, _, _, _ in batches for r in records]
        counts: list[int] = await conn.fetchval(
            "SELECT append_complaint_batches($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
            [len(records) for records, _, _, _ in batches],
            [records[0].complaint_id for records, _, _, _ in batches],
            [workflow_id for _, workflow_id, _, _ in batches],
            [run_id for _, _, run_id, _ in batches],
            [update_id for _, _, _, update_id in batches],
            *_event_columns(events),
        )
        return counts

    async def read(
        self, complaint_id: str, *, after: int = 0, upto: int | None = None, limit: int | None = None
    ) -> list[Recorded]:
        rows = await self._fetch(
            f"SELECT {_COLUMNS} FROM complaint_events WHERE complaint_id = $1 AND sequence > $2"
            " AND ($3::integer IS NULL OR sequence <= $3) ORDER BY sequence LIMIT $4",
            complaint_id, after, upto, limit,
        )
        return [to_record(row) for row in rows]

    async def read_all(self, after: Cursor = START, limit: int = 1000) -> list[Positioned]:
        rows = await self._fetch(
            f"SELECT tx::text::bigint AS tx_id, position, {_COLUMNS} FROM complaint_events"
            f" WHERE (tx, position) > ($1::text::xid8, $2::bigint) AND tx < {HORIZON}"
            " ORDER BY tx, position LIMIT $3",
            str(after.tx), after.position, limit,
        )
        return [Positioned(row["position"], to_record(row), row["tx_id"]) for row in rows]

    async def pages(self, after: Cursor = START, page: int = 5000) -> AsyncIterator[Sequence[Row]]:
        query = (f"SELECT {_ROWS} FROM complaint_events"
                 f" WHERE (tx, position) > ($1::text::xid8, $2::bigint) AND tx < {HORIZON}"
                 " ORDER BY tx, position LIMIT $3")
        batch = await self._fetch(query, str(after.tx), after.position, page)
        while batch:
            last = batch[-1]
            upcoming = asyncio.ensure_future(self._fetch(query, str(last[TX]), last[POSITION], page))
            await asyncio.sleep(0)  # let the query go out now
            try:
                yield batch
            except BaseException:
                upcoming.cancel()
                raise
            batch = await upcoming

    async def split(self, parts: int) -> list[Part]:
        """The complaints in ``parts`` ranges of their ids holding about as many rows each (from a sample of
        the table when it is large), for :meth:`part`."""
        if parts <= 1:
            return [Part()]
        estimate = await self._fetch("SELECT reltuples::bigint AS n FROM pg_class"
                                     " WHERE oid = 'complaint_events'::regclass")
        sample = " TABLESAMPLE SYSTEM (1) REPEATABLE (0)" if estimate and estimate[0]["n"] > 200_000 else ""
        rows = await self._fetch(f"SELECT percentile_disc($1::float8[]) WITHIN GROUP (ORDER BY complaint_id) AS at"
                                 f" FROM complaint_events{sample}", [k / parts for k in range(1, parts)])
        cuts = sorted(set(filter(None, rows[0]["at"] or [])))
        edges: list[str | None] = [None, *cuts, None]
        return [Part(low, high) for low, high in itertools.pairwise(edges)]

    async def part(self, part: Part, upto: Cursor, page: int = 5000, *,
                   folding: bool = False) -> AsyncIterator[Sequence[Row]]:
        """The rows of one part of the complaints (a range of their ids, see :meth:`split`) up to ``upto`` (a
        cursor from :meth:`end`), complaint by complaint, each in sequence order, page by page. A complaint's
        rows are all in one part, so parts can be read and checked side by side, one process each
        (audit/parts.py), each reading only its own rows along the primary key (parts by a hash of the id had
        every part scan and sort the whole table). One query through a cursor in a read-only snapshot.
        ``folding``: rows for a fold (the report), which hashes nothing: no time spelled for the hash, and the
        payload as its JSON text, which the fold reads into its event (see ``_FOLDED``).

        The planner is kept from sorting: for rows as narrow as a fold's it chose a parallel scan of the whole
        table and a sort of the part (at 1M events, PostgreSQL spent 7.7 s of CPU on a report instead of 4.6)."""
        where, edges = "(tx, position) <= ($1::text::xid8, $2::bigint)", []
        for compare, edge in ((">=", part.low), ("<", part.high)):
            if edge is not None:  # as constants of the query's own, so the planner bounds the key's range
                edges.append(edge)
                where += f" AND complaint_id {compare} ${2 + len(edges)}"
        query = (f"SELECT {_FOLDED if folding else _ROWS} FROM complaint_events WHERE {where}"
                 " ORDER BY complaint_id, sequence")
        try:
            async with self.pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
                await conn.execute("SET LOCAL enable_sort = off")  # along the primary key, in its order
                cursor = await conn.cursor(query, str(upto.tx), upto.position, *edges)
                while batch := await cursor.fetch(page):
                    yield batch
        except CONNECTION_ERRORS as error:
            raise EventLogUnavailable(str(error)) from error
        except asyncpg.PostgresError as error:
            raise _translate(error) from error

    async def head(self, complaint_id: str) -> ChainHead:
        rows = await self._fetch("SELECT sequence, hash FROM complaint_events WHERE complaint_id = $1"
                                 " ORDER BY sequence DESC LIMIT 1", complaint_id)
        return ChainHead(sequence=rows[0]["sequence"], hash=rows[0]["hash"]) if rows else ChainHead()

    async def end(self) -> Cursor:
        rows = await self._fetch(
            f"SELECT tx::text::bigint AS tx_id, position FROM complaint_events WHERE tx < {HORIZON}"
            " ORDER BY tx DESC, position DESC LIMIT 1")
        return Cursor(rows[0]["tx_id"], rows[0]["position"]) if rows else START

    async def count(self) -> int:
        """How many events the log holds (an estimate is not good enough for an auditor's progress bar)."""
        rows = await self._fetch("SELECT count(*) AS n FROM complaint_events")
        return int(rows[0]["n"])

    async def complaint_ids(self) -> list[str]:
        rows = await self._fetch("SELECT DISTINCT complaint_id FROM complaint_events ORDER BY complaint_id")
        return [row["complaint_id"] for row in rows]

    async def stored_from(self, complaint_id: str, first: int) -> StoredBatch | None:
        # One append is one transaction: the rows its transaction wrote for the complaint, from ``first`` on.
        rows = await self._fetch(
            f"SELECT run_id, update_id, {_COLUMNS} FROM complaint_events e"
            " WHERE e.complaint_id = $1 AND e.sequence >= $2 - 1 AND e.tx = (SELECT tx FROM complaint_events"
            " WHERE complaint_id = $1 AND sequence = $2) ORDER BY e.sequence", complaint_id, first)
        if not rows or rows[0]["sequence"] != first:  # none there, or part of an append that began earlier
            return None
        if len({(r["run_id"], r["update_id"]) for r in rows}) != 1 or rows[-1]["sequence"] != first + len(rows) - 1:
            return None  # not what one append writes: take nothing for it
        return StoredBatch([to_record(r) for r in rows], rows[0]["run_id"], rows[0]["update_id"])

    async def writer_runs(self, complaint_id: str) -> list[str]:
        rows = await self._fetch("SELECT run_id FROM complaint_events WHERE complaint_id = $1 AND run_id <> ''"
                                 " GROUP BY run_id ORDER BY min(sequence)", complaint_id)
        return [row["run_id"] for row in rows]

    async def archived_witnesses(self, complaint_ids: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """Rows of complaint_witness_archive (migrations/006_witness_archive.sql): every one, or those of
        ``complaint_ids``; none before that migration ran."""
        try:
            rows = await self._fetch("SELECT * FROM complaint_witness_archive WHERE $1::text[] IS NULL"
                                     " OR complaint_id = ANY($1::text[]) ORDER BY complaint_id",
                                     None if complaint_ids is None else list(complaint_ids))
        except EventLogError as error:
            if isinstance(error.__cause__, asyncpg.UndefinedTableError):
                return []
            raise
        return [dict(row) for row in rows]

    async def archive_witness(self, row: dict[str, Any]) -> bool:
        """Store an archived witness through the sealer's function; False when the complaint has one already
        (the stored row is left as it is)."""
        try:
            async with self.pool.acquire() as conn:
                written: bool = await conn.fetchval(
                    "SELECT record_complaint_witness($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                    row["complaint_id"], row["workflow_id"], row["run_ids"], row["final_sequence"], row["final_hash"],
                    row["hashes"], row["closed_as"], row["history_sha256"], row["archived_at"], row["public_key"],
                    row["note"])
                return written
        except CONNECTION_ERRORS as error:
            raise EventLogUnavailable(str(error)) from error
        except asyncpg.PostgresError as error:
            raise _translate(error) from error

    async def _fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        try:
            async with self.pool.acquire() as conn:
                return list(await conn.fetch(query, *args))
        except CONNECTION_ERRORS as error:
            raise EventLogUnavailable(str(error)) from error
        except asyncpg.PostgresError as error:
            raise _translate(error) from error


#: The channel consumers of the log listen on (eventlog/subscriptions.py).
CHANNEL = "complaint_events"
#: The longest a consumer waits to be woken after an append (it polls anyway, every few seconds).
WAKE_EVERY = 0.02


async def _notify(conn: asyncpg.Connection) -> None:
    """Wake the log's consumers: after appends committed, as a statement of its own (inside an append's
    transaction, NOTIFY would hold the cluster-wide notification lock across the commit's flush). Best effort:
    a consumer that misses it finds the events at its next poll."""
    with contextlib.suppress(asyncpg.PostgresError):
        await conn.execute(f"NOTIFY {CHANNEL}")


@dataclass(frozen=True)
class _Append:
    """An append waiting for its turn, and where its caller waits for the answer."""

    records: Sequence[Recorded]
    workflow_id: str
    run_id: str
    update_id: str | None
    answer: asyncio.Future[int]


def _event_columns(records: Sequence[Recorded]) -> tuple[list[Any], ...]:
    """The append functions' per-event arrays: sequences, types, versions, times, actors, payloads, links and
    hashes."""
    return ([r.sequence for r in records], [r.type for r in records], [r.schema_version for r in records],
            [r.occurred_at for r in records], [r.actor for r in records], [r.payload for r in records],
            [r.prev_hash for r in records], [r.hash for r in records])


def _caused(error: EventLogError, cause: BaseException) -> EventLogError:
    error.__cause__ = cause  # as ``raise error from cause`` would
    return error


def _answer(answer: asyncio.Future[int], written: int = 0, *, error: BaseException | None = None) -> None:
    if answer.done():  # its caller gave up waiting (cancelled)
        return
    if error is None:
        answer.set_result(written)
    else:
        answer.set_exception(error)


def _translate(error: asyncpg.PostgresError) -> EventLogError:
    state = getattr(error, "sqlstate", None)
    if state == "CE001":
        return DivergentHistory(error.args[0] if error.args else str(error))
    if state == "CE002":
        return BrokenChain(error.args[0] if error.args else str(error))
    if state and state[:2] in {"08", "57"}:  # connection exceptions, operator intervention (shutdown)
        return EventLogUnavailable(str(error))
    return EventLogError(f"{type(error).__name__}: {error}")
