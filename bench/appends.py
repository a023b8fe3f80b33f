"""eventlog.append against raw asyncpg inserts of the same rows into a plain table in the same database:
one event per call, the batches the workflow really sends, and eight complaints appending at once."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence

import asyncpg

from bench.figures import ROUNDS, Figure, Results, stopwatch
from bench.synthetic import Batches, clone, insert_into, row
from dev.stack import Postgres, scratch_database
from domain.chain import Recorded, canonical_json
from eventlog import PostgresEventStore
from eventlog.connect import create_pool

#: Same columns and primary key as complaint_events; no trigger, no function, no lock: what an insert costs.
RAW_TABLE = """
CREATE TABLE raw_events (
    complaint_id text NOT NULL, sequence integer NOT NULL, type text NOT NULL, schema_version integer NOT NULL,
    occurred_at timestamptz NOT NULL, actor text NOT NULL, payload jsonb NOT NULL, prev_hash char(64) NOT NULL,
    hash char(64) NOT NULL, workflow_id text NOT NULL, run_id text NOT NULL,
    position bigint GENERATED ALWAYS AS IDENTITY, recorded_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (complaint_id, sequence));
GRANT INSERT, SELECT ON raw_events TO complaints_app;
"""


class Appenders:
    def __init__(self, pool: asyncpg.Pool, table: str = "raw_events") -> None:
        self.pool = pool
        self.store = PostgresEventStore(pool)
        self.insert = insert_into(table)

    async def ours(self, batch: Sequence[Recorded]) -> None:
        await self.store.append(batch, workflow_id=f"complaint-{batch[0].complaint_id}", run_id="bench")

    async def raw(self, batch: Sequence[Recorded]) -> None:
        async with self.pool.acquire() as conn:
            if len(batch) == 1:
                await conn.execute(self.insert, *row(batch[0]))
            else:
                async with conn.transaction():
                    await conn.executemany(self.insert, [row(r) for r in batch])


async def _rate(append: Callable[[Sequence[Recorded]], Awaitable[None]], complaints: list[Batches],
                streams: int = 1) -> float:
    """Events per second appending ``complaints`` (each batch in order) over ``streams`` concurrent callers."""
    queue = list(complaints)
    events = sum(len(b) for c in complaints for b in c)

    async def stream() -> None:
        while queue:
            for batch in queue.pop():
                await append(batch)

    with stopwatch() as watch:
        await asyncio.gather(*(stream() for _ in range(streams)))
    return events / watch.seconds


def _singles(complaints: list[Batches]) -> list[Batches]:
    return [[[r] for b in c for r in b] for c in complaints]


async def measure(pg: Postgres, template: Batches, results: Results, advance: Callable[[str], None],
                  complaints: int = 120) -> None:
    section = "2. Event log appends"
    sets = iter(range(10_000))

    def fresh(n: int) -> list[Batches]:
        return [clone(template, f"A{next(sets):05d}") for _ in range(n)]

    per = sum(len(b) for b in template)
    sizes = ", ".join(str(len(b)) for b in template)
    async with scratch_database(pg, "bench_appends") as db:
        admin = await asyncpg.connect(db.admin_url)
        await admin.execute(RAW_TABLE)
        await admin.close()
        pool = await create_pool(db.app_url, max_size=10)
        try:
            appenders = Appenders(pool)
            await _rate(appenders.ours, fresh(5))  # warm up: connections, plans
            await _rate(appenders.raw, fresh(5))
            wide_pool = await create_pool(db.app_url, max_size=32)  # 32 complaints at once: a session each
            wide = Appenders(wide_pool)
            await _rate(wide.ours, fresh(32), 32)
            await _rate(wide.raw, fresh(32), 32)
            cases = [("one event per call", _singles, 1, appenders, 0.5),
                     ("the workflow's batches", lambda c: c, 1, appenders, 0.5),
                     ("the workflow's batches, 8 complaints at once", lambda c: c, 8, appenders, 0.8),
                     ("the workflow's batches, 32 complaints at once", lambda c: c, 32, wide, 0.8)]
            rates = {}
            try:
                for name, shape, streams, using, goal in cases:
                    rounds = []  # (ratio, ours, raw), the two interleaved, the order alternating
                    for n in range(ROUNDS):
                        first, second = (using.raw, using.ours) if n % 2 == 0 else (using.ours, using.raw)
                        a = await _rate(first, shape(fresh(complaints)), streams)
                        b = await _rate(second, shape(fresh(complaints)), streams)
                        raw, ours = (a, b) if first == using.raw else (b, a)
                        rounds.append((ours / raw, ours, raw))
                    _, ours, raw = sorted(rounds)[len(rounds) // 2]
                    rates[name] = ours
                    results.add(Figure(section, f"events/s, {name}", ours, raw, "events/s",
                                       goal=f">= {goal} of raw", met=ours >= goal * raw,
                                       note=f"{complaints * per} events; batches of {sizes}; the median of "
                                            f"{ROUNDS} interleaved rounds (ratios "
                                            f"{', '.join(f'{r:.2f}' for r, _, _ in sorted(rounds))})"))
                    advance(f"appends: {name}")
            finally:
                await wide_pool.close()
            await _table_lever(db, appenders, fresh, complaints, results)
            await _in_flight_lever(pool, fresh, complaints, results)
            results.lever("batching a step's events in one append",
                          f"{rates[cases[1][0]]:,.0f} events/s in the workflow's batches vs "
                          f"{rates[cases[0][0]]:,.0f} one event per call", "kept: one append per step")
        finally:
            await pool.close()
        for size in (2, 10):
            small = await create_pool(db.app_url, max_size=size)
            try:
                rate = await _rate(Appenders(small).ours, fresh(complaints // 2), 8)
            finally:
                await small.close()
            results.lever(f"connection pool size {size}", f"{rate:,.0f} events/s, 8 complaints at once",
                          "kept 10, asyncpg's default: a worker's other queries (keys, remedy ledger) use "
                          "the pool too" if size == 10 else "not kept: the worker's other queries share the pool")
        advance("appends: pool sizes")
    _canonical_lever(template, results)


async def _table_lever(db: Postgres, appenders: Appenders, fresh: Callable[[int], list[Batches]], complaints: int,
                       results: Results) -> None:
    """What the log's table costs before its append function does anything: the same inserts as raw, into
    complaint_events itself (by its owner: the app role may not insert), 8 complaints at once, interleaved."""
    owner = await create_pool(db.admin_url, max_size=10)
    try:
        direct = Appenders(owner, table="complaint_events")
        rates: dict[str, list[float]] = {"table": [], "raw": [], "ours": []}
        order = [("table", direct.raw), ("raw", appenders.raw), ("ours", appenders.ours)]
        for n in range(ROUNDS):
            for name, append in order if n % 2 == 0 else order[::-1]:
                rates[name].append(await _rate(append, fresh(complaints), 8))
    finally:
        await owner.close()
    table, raw, ours = (sorted(rates[k])[ROUNDS // 2] for k in ("table", "raw", "ours"))
    results.lever("the log's table alone (complaint_events: its indexes, its transaction column), no function",
                  f"{table:,.0f} events/s, {table / raw:.2f} of raw, 8 complaints at once (the append function: "
                  f"{ours / raw:.2f}); medians of {ROUNDS} interleaved rounds",
                  "the table's own cost bounds what any append function can reach against raw inserts")


async def _in_flight_lever(pool: asyncpg.Pool, fresh: Callable[[int], list[Batches]], complaints: int,
                           results: Results) -> None:
    """Appends together or each in a call of its own (as before migration 015), 8 complaints at once,
    interleaved: the store as kept, with one call under way instead of two, and with one batch per call
    and eight calls under way."""
    kept = (PostgresEventStore.in_flight, PostgresEventStore.most_together)
    choices = {"as kept": kept, "one call under way": (1, kept[1]), "each batch its own call": (8, 1)}
    rates: dict[str, list[float]] = {name: [] for name in choices}
    for n in range(ROUNDS):
        for name in list(choices) if n % 2 == 0 else list(choices)[::-1]:
            appenders = Appenders(pool)
            appenders.store.in_flight, appenders.store.most_together = choices[name]
            rates[name].append(await _rate(appenders.ours, fresh(complaints), 8))
    median = {name: sorted(r)[ROUNDS // 2] for name, r in rates.items()}
    results.lever("appends that wait go together in one call",
                  "; ".join(f"{name} ({calls} under way, at most {most} per call): {median[name]:,.0f} events/s"
                            for name, (calls, most) in choices.items())
                  + f"; 8 complaints at once, medians of {ROUNDS} interleaved rounds",
                  f"kept: {kept[0]} calls under way, together")


def _canonical_lever(template: Batches, results: Results) -> None:
    """orjson against the standard library for the canonical bytes every hash covers (same bytes)."""
    import time

    bodies = [{"payload": r.payload, "type": r.type, "actor": r.actor} for b in template for r in b] * 2000

    def stdlib(value: object) -> bytes:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()

    assert all(stdlib(b) == canonical_json(b) for b in bodies[:50])
    rates = {}
    for name, dumps in (("orjson", canonical_json), ("json", stdlib)):
        started = time.perf_counter()
        for body in bodies:
            dumps(body)
        rates[name] = len(bodies) / (time.perf_counter() - started)
    results.lever("orjson for canonical bytes",
                  f"{rates['orjson']:,.0f} bodies/s vs {rates['json']:,.0f} with json.dumps (same bytes)",
                  "kept orjson")
