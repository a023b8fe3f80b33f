"""The whole log read on every core: `verify --all` and `report` at millions of events.

The complaints are split into parts by ranges of their ids (:meth:`PostgresEventStore.split`). A complaint's
events all fall in one part, so each part is checked (or folded) on its own, by a process of its own, with
nothing to stitch: the parts' results are simply put together. Every part reads up to the same cursor, so
together they read exactly the rows a single reader in global order would have read.

Rows, tuples and dicts read in bulk make no reference cycles, and a collector that walks a heap of millions
of them on every generation-2 pass took half the time of a plain read: :func:`bulk` pauses it.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import multiprocessing
import os
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from domain.chain import Break, Chains
from eventlog import Cursor, PostgresEventStore
from eventlog.connect import create_pool
from eventlog.store import Part

#: How many processes read the log (default: one per core).
PROCESSES_ENV = "COMPLAINTS_READ_PROCESSES"

Progress = Callable[[int], None]
_progress: Any = None  # a child's shared counter of rows read (set by _start_child)


def processes() -> int:
    value = os.environ.get(PROCESSES_ENV, "")
    try:
        return max(1, int(value)) if value else os.cpu_count() or 1
    except ValueError:
        raise SystemExit(f"{PROCESSES_ENV} must be a whole number, not {value!r}") from None


@contextlib.contextmanager
def bulk() -> Iterator[None]:
    """Pause the cycle collector while millions of acyclic rows pass through (see the module's note)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


# --- what each part does --------------------------------------------------------------------------------------

PartResult = tuple[dict[str, int], dict[str, list[Break]]]


async def _chains_of(store: PostgresEventStore, part: Part, upto: Cursor, advance: Progress) -> PartResult:
    chains = Chains()
    async for page in store.part(part, upto):
        chains.feed(page)
        advance(len(page))
    return chains.events, {cid: found for cid in chains.events if (found := chains.breaks(cid))}


async def _report_of(store: PostgresEventStore, part: Part, upto: Cursor, advance: Progress, since: Any) -> Any:
    from audit.report import ReportBuilder

    builder = ReportBuilder(since)
    add = builder.add_row
    async for page in store.part(part, upto, folding=True):
        for row in page:
            add(row)  # the part's rows begin with the record's fields, in their order
        advance(len(page))
    return builder.finish()


_WORK: dict[str, Callable[..., Awaitable[Any]]] = {"chains": _chains_of, "report": _report_of}


# --- the processes --------------------------------------------------------------------------------------------

def _ignore(n: int) -> None:
    pass


def _start_child(counter: Any) -> None:
    global _progress
    _progress = counter


def _advance_shared(n: int) -> None:
    with _progress.get_lock():
        _progress.value += n


def _run_part(work: str, dsn: str, part: Part, upto: Cursor, *extra: Any) -> Any:
    """In a child process: one part, read over a connection of its own."""
    async def go() -> Any:
        pool = await create_pool(dsn, min_size=1, max_size=1)
        try:
            return await _WORK[work](PostgresEventStore(pool), part, upto, _advance_shared, *extra)
        finally:
            await pool.close()

    with bulk():
        return asyncio.run(go())


async def across_parts(work: str, store: PostgresEventStore, dsn: str | None, progress: Progress | None,
                       *extra: Any) -> list[Any]:
    """``work`` ("chains" or "report") over every part of the log up to its end now: part 0 in this
    process, the others in child processes (one per core, or COMPLAINTS_READ_PROCESSES; one part when no
    ``dsn`` is given for the children to connect with). Returns each part's result."""
    upto = await store.end()
    parts = await store.split(processes() if dsn else 1)
    if len(parts) == 1 or dsn is None:
        with bulk():
            return [await _WORK[work](store, Part(), upto, progress or _ignore, *extra)]
    context = multiprocessing.get_context("spawn")  # never fork a process with an event loop running
    counter = context.Value("q", 0)
    seen = 0

    def advance(n: int) -> None:
        nonlocal seen
        now = counter.value
        if progress:
            progress(n + now - seen)
        seen = now

    loop = asyncio.get_running_loop()
    with ProcessPoolExecutor(len(parts) - 1, mp_context=context, initializer=_start_child,
                             initargs=(counter,)) as pool:
        children = [loop.run_in_executor(pool, _run_part, work, dsn, part, upto, *extra) for part in parts[1:]]
        with bulk():
            mine = await _WORK[work](store, parts[0], upto, advance, *extra)
        while not all(child.done() for child in children):
            await asyncio.wait(children, timeout=0.25)
            advance(0)
        return [mine, *[child.result() for child in children]]
