"""Verification at scale: the chain check alone (in memory, one core), `complaints verify --all --log-only`
and `complaints report` over 10k, 100k and 1,000,000 events, each beside the floor it cannot beat: hashing
alone for the chain check, reading the rows for the commands."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import orjson

from audit.parts import bulk, processes
from bench.figures import Figure, Results, stopwatch
from bench.synthetic import ROW_COLUMNS, Batches, clones, insert_into, row
from dev.stack import Postgres, scratch_database
from domain.chain import Chains, Recorded, canonical_time
from eventlog.connect import connect

ROOT = Path(__file__).resolve().parent.parent
SIZES = (10_000, 100_000, 1_000_000)
#: Interleaved rounds of the chain check and sha256 per size (see measure): more than the other figures' ROUNDS,
#: a round being a few seconds.
CHAIN_ROUNDS = 5
Complaints = list[tuple[str, list[Recorded]]]


def generate(template: Batches, events: int) -> Complaints:
    return [(c[0][0].complaint_id, [r for b in c for r in b]) for c in clones(template, events)]


def upto(complaints: Complaints, events: int) -> Complaints:
    taken, count = [], 0
    for cid, records in complaints:
        if count >= events:
            break
        taken.append((cid, records[: events - count]))
        count += len(taken[-1][1])
    return taken


def as_rows(complaints: Complaints) -> list[tuple[object, ...]]:
    """The records as the log's readers hand them to the chain check: rows in global order (the clones were
    appended one after another), the record's fields, the transaction and position, then the time as
    PostgreSQL spells it for the hash (eventlog.store: part of the read, not of the check)."""
    return [(*r.row(), 0, 0, canonical_time(r.occurred_at))
            for _, records in complaints for r in records]


def chain_check(complaints: Complaints, at_least: int = 1_000_000) -> tuple[float, int]:
    """Seconds and events for checking ``complaints`` as `verify --all` does (:class:`Chains` over rows),
    repeated until ``at_least`` events were checked (a 10k check alone is a tenth of a second: too short to
    time)."""
    rows = as_rows(complaints)
    rounds = max(1, at_least // len(rows))
    chains = Chains()
    with bulk(), stopwatch() as watch:
        for _ in range(rounds):
            chains = Chains()
            chains.feed(rows)
    assert not any(chains.breaks(cid) for cid in chains.events)
    return watch.seconds, len(rows) * rounds


def hashing_floor(complaints: Complaints, at_least: int = 1_000_000) -> float:
    """sha256 over the very bytes the chain check hashes, already canonicalised, repeated as the chain check
    is (a single pass over 10k events ran in warm caches the check's million did not): events/s."""
    chained = [(bytes.fromhex(r.prev_hash), r.body()) for _, records in complaints for r in records]
    rounds = max(1, at_least // len(chained))
    with bulk(), stopwatch() as watch:
        for _ in range(rounds):
            for prev, body in chained:
                hashlib.sha256(prev + body).hexdigest()
    return len(chained) * rounds / watch.seconds


async def load(db: Postgres, complaints: Complaints, copy: bool = True) -> float:
    rows = [row(r) for _, records in complaints for r in records]
    conn = await connect(db.admin_url)
    if copy:  # COPY speaks binary: jsonb is a version byte, then the text
        await conn.set_type_codec("jsonb", schema="pg_catalog", format="binary",
                                  encoder=lambda value: b"\x01" + orjson.dumps(value),
                                  decoder=lambda data: orjson.loads(data[1:]))
    try:
        with stopwatch() as watch:
            if copy:
                await conn.copy_records_to_table("complaint_events", records=rows, columns=ROW_COLUMNS)
            else:
                async with conn.transaction():
                    await conn.executemany(insert_into("complaint_events"), rows)
        await conn.execute("VACUUM (FREEZE, ANALYZE) complaint_events")  # as an aged table is: hint bits set
    finally:
        await conn.close()
    return len(rows) / watch.seconds


READ = """
import asyncio, sys, time
from eventlog.connect import connect

async def main(dsn: str, page: int) -> None:
    conn = await connect(dsn)
    started = time.perf_counter()
    after = 0
    while rows := await conn.fetch(
            "SELECT position, complaint_id, sequence, type, schema_version, occurred_at, actor, payload,"
            " prev_hash, hash FROM complaint_events WHERE position > $1 ORDER BY position LIMIT $2", after, page):
        after = rows[-1]["position"]
    print(time.perf_counter() - started)
    await conn.close()

asyncio.run(main(sys.argv[1], int(sys.argv[2])))
"""


async def read_floor(db: Postgres, page: int = 5000) -> float:
    """Every row read in position order, page by page, doing nothing with it (JSON parsed, as the commands'
    connections parse it): seconds. In a process of its own, as the commands run (not beside the bench's
    million records in memory, which made a reader's garbage collection cost a third more)."""
    done = await asyncio.to_thread(subprocess.run, [sys.executable, "-c", READ, db.app_url, str(page)], cwd=ROOT,
                                   capture_output=True, text=True, check=True, timeout=900)
    return float(done.stdout.strip())


def command(db: Postgres, *args: str) -> tuple[float, dict[str, object]]:
    env = {**os.environ, "DATABASE_URL": db.app_url, "DATABASE_ADMIN_URL": db.admin_url}
    with stopwatch() as watch:
        done = subprocess.run([sys.executable, "-m", "cli.main", *args], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=900)
    if done.returncode != 0:
        raise RuntimeError(f"complaints {' '.join(args)} failed ({done.returncode}): {done.stderr[-2000:]}")
    return watch.seconds, json.loads(done.stdout)


async def measure(pg: Postgres, template: Batches, results: Results, advance: Callable[[str], None]) -> None:
    section = "3-4. Verification and report"
    everything = await asyncio.to_thread(generate, template, SIZES[-1])
    advance("verification: 1,000,000 events generated")
    for size in SIZES:
        # The median of interleaved rounds, the order alternating: on unchanged code single rounds gave 0.32 to
        # 0.70 of sha256, as the shared machine's speed moved between the two timings.
        rounds = []  # (ratio, events/s, sha256 events/s, seconds, events)
        part = upto(everything, size)
        for n in range(CHAIN_ROUNDS):
            if n % 2:
                floor = hashing_floor(part)
                seconds, events = chain_check(part)
            else:
                seconds, events = chain_check(part)
                floor = hashing_floor(part)
            rounds.append((events / seconds / floor, events / seconds, floor, seconds, events))
        _, ours, floor, seconds, events = sorted(rounds)[len(rounds) // 2]
        ratios = ", ".join(f"{r[0]:.2f}" for r in sorted(rounds))
        results.add(Figure(section, f"chain check alone, {size:,} events", ours, floor, "events/s",
                           goal=">= 0.5 of sha256 alone", met=ours >= 0.5 * floor,
                           note=f"{events:,} events checked in {seconds:.2f} s on one core, as rows (what verify "
                                "reads); baseline: sha256 alone over the same canonical bytes; the median of "
                                f"{CHAIN_ROUNDS} interleaved rounds (ratios {ratios})"))
    advance("verification: chain check")
    with stopwatch() as watch:
        subprocess.run([sys.executable, "-c", "import cli.main"], cwd=ROOT, check=True)
    startup = watch.seconds
    executemany = 0.0  # rows/s by executemany: measured at the first (smallest) size, compared at the last
    for size in SIZES:
        part = upto(everything, size)
        async with scratch_database(pg, f"bench_{size}") as db:
            rate = await load(db, part, copy=size != SIZES[0])
            if size == SIZES[0]:
                executemany = rate
            elif size == SIZES[-1]:
                results.lever("COPY for bulk loads", f"{rate:,.0f} rows/s by COPY ({size:,}) vs "
                              f"{executemany:,.0f} by executemany ({SIZES[0]:,})",
                              "kept COPY for synthetic loads; appends stay one function call per batch")
            # Each side the faster of two runs, the read once before and once after the commands: a slow minute
            # of a shared machine (a read of 1M rows has taken from 6 to 19 s) lands on one run, not on a figure.
            before = await read_floor(db)
            seconds, verdict = min((command(db, "verify", "--all", "--log-only", "--json") for _ in range(2)),
                                   key=lambda run: run[0])
            assert verdict.get("ok") is True and verdict.get("events") == size, verdict
            scanned, report = min((command(db, "report", "--json", "--scan") for _ in range(2)), key=lambda run: run[0])
            assert report.get("events") == size, report
            floor = min(before, await read_floor(db))
            last = size == SIZES[-1]
            results.add(Figure(section, f"verify --all --log-only, {size:,} events", size / seconds, size / floor,
                               "events/s", goal=">= 0.5 of reading" if last else "",
                               met=size / seconds >= 0.5 * size / floor if last else None,
                               note=f"{seconds:.1f} s, of which ~{startup:.1f} s starting Python; {processes()} "
                                    "processes; baseline: reading the same rows in one; each the faster of two"))
            results.add(Figure(section, f"report, {size:,} events", scanned, floor, "s", higher_is_better=False,
                               goal="<= 2x reading" if last else "", met=scanned <= 2 * floor if last else None,
                               note=f"{processes()} processes; baseline: reading the same rows in one; each the "
                                    "faster of two"))
            if last:
                await live_figures(db, report, scanned, results, section, startup)
                await since_checkpoint(db, template, results, section, startup)
        advance(f"verification: {size:,} events in PostgreSQL")


async def live_figures(db: Postgres, scanned: dict[str, object], scan_seconds: float, results: Results,
                       section: str, startup: float) -> None:
    """The report from the live figures (audit/live.py) beside the report that reads the whole log: the
    consumer folds the log once (timed apart), then answering reads its rows. The two must agree."""
    from audit import live
    from audit.report import render_json
    from eventlog.connect import create_pool

    pool = await create_pool(db.app_url, max_size=2)
    try:
        with stopwatch() as folding:
            await live.subscription(pool).catch_up()
        with stopwatch() as answering:
            figures, _ = await live.live_report(pool)
    finally:
        await pool.close()
    assert render_json(figures) == scanned, "the live figures differ from the scan's"
    results.add(Figure(section, "report from the live figures, 1,000,000 events", answering.seconds, scan_seconds,
                       "s", higher_is_better=False, goal="well under a second", met=answering.seconds < 0.5,
                       note=f"answering alone, in-process (the command adds ~{startup:.1f} s of Python start-up); "
                            f"the consumer had folded the log once, in {folding.seconds:.0f} s, and follows each "
                            "append after that; baseline: report reading the whole log; the figures are equal"))


async def since_checkpoint(db: Postgres, template: Batches, results: Results, section: str, startup: float) -> None:
    """`verify --since-checkpoint` after 1,000 events appended to a sealed log of 1,000,000, against the full
    verify of the same log: the incremental run should cost what the new events cost."""
    import tempfile

    from audit import checkpoints as cp
    from bench.synthetic import clones as more
    from eventlog import PostgresEventStore
    from eventlog.connect import create_pool

    key = cp.signing_key(cp.new_seal_key())
    sealer = await create_pool(db.sealer_url, max_size=1)
    try:
        await cp.seal(sealer, key, "bench/log")
    finally:
        await sealer.close()
    trusted = cp.verifier_key("bench/log", key)
    with tempfile.TemporaryDirectory() as scratch:
        state = f"{scratch}/verified.json"
        full, _ = command(db, "verify", "--all", "--log-only", "--json", "--public-key", trusted, "--state", state)
        pool = await create_pool(db.app_url, max_size=2)
        try:
            store = PostgresEventStore(pool)
            added = 0
            for complaint in more(template, 1_000, prefix="N"):
                for batch in complaint:
                    added += await store.append(batch)
        finally:
            await pool.close()
        since, verdict = command(db, "verify", "--all", "--log-only", "--json", "--since-checkpoint",
                                 "--public-key", trusted, "--state", state)
    assert verdict.get("ok") is True and verdict.get("events") == added, verdict
    results.add(Figure(section, f"verify --since-checkpoint, {added:,} events after 1,000,000", since, full, "s",
                       higher_is_better=False, goal="<= 0.1 of the full verify", met=since <= 0.1 * full,
                       note=f"{since:.1f} s, of which ~{startup:.1f} s starting Python; baseline: the full "
                            "verify of the same log"))
