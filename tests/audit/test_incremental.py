"""`complaints verify --all --log-only --since-checkpoint`, against a real PostgreSQL and the real command: a
full verify keeps the newest checkpoint it proved; the next run checks only what was appended since (and the
checkpoints sealed since), and still catches a tamper after the checkpoint (an edited event) and before it
(a chain rewritten consistently from the edit down, which changes the head the checkpoint sealed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import asyncpg

from audit import checkpoints as cp
from audit import incremental
from eventlog import PostgresEventStore
from tests.audit.test_verify import as_superuser, insert, rechain, rows
from tests.eventlog.contract import new_id, records

ROOT = Path(__file__).resolve().parent.parent.parent
ORIGIN = "complaints.test/log"


def verify(database: Any, key: Any, state: Path, *extra: str) -> tuple[int, dict[str, Any]]:
    env = {**os.environ, "DATABASE_URL": database.app_url, "COLUMNS": "200"}
    done = subprocess.run([sys.executable, "-m", "cli.main", "verify", "--all", "--log-only", "--json",
                           "--public-key", cp.verifier_key(ORIGIN, key), "--state", str(state), *extra],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)
    return done.returncode, json.loads(done.stdout) if done.stdout.strip().startswith("{") else {"err": done.stderr}


async def test_since_checkpoint_checks_only_what_is_new_and_catches_a_tamper_after_and_before(
        database: Any, store: PostgresEventStore, sealer_pool: asyncpg.Pool, admin: asyncpg.Connection,
        tmp_path: Path) -> None:
    key = cp.signing_key(cp.new_seal_key())
    state = tmp_path / "verified.json"
    a, b, c = new_id(), new_id(), new_id()
    first = {cid: records(cid, "one", "two") for cid in (a, b, c)}
    for batch in first.values():
        await store.append(batch)
    sealed = await cp.seal(sealer_pool, key, ORIGIN)

    # Nothing proved yet: there is nothing to start from.
    code, shown = verify(database, key, state, "--since-checkpoint")
    assert code == 2 and "no verified checkpoint" in " ".join(shown["err"].split())
    code, full = verify(database, key, state)
    assert code == 0 and full["events"] == 6
    assert incremental.load(state).checkpoint == sealed

    # Appended since: a third event of a, a new complaint d, a checkpoint, then e after it.
    await store.append(records(a, "three", head=first[a][-1].head))
    d, e = new_id(), new_id()
    await store.append(records(d, "one", "two"))
    newer = await cp.seal(sealer_pool, key, ORIGIN)
    await store.append(records(e, "one"))
    code, since = verify(database, key, state, "--since-checkpoint")
    assert code == 0, since
    assert since["events"] == 4 and since["complaints"] == 3 and since["checkpoints"] == 2  # only the new
    assert incremental.load(state).checkpoint == newer  # the next run starts from the newest proved

    # After the checkpoint: an event edited in place.
    [row] = [r for r in await rows(admin, e) if r["sequence"] == 1]
    await as_superuser(admin, ("UPDATE complaint_events SET payload = $1 WHERE complaint_id = $2 AND sequence = 1",
                               {"label": "edited"}, e))
    code, since = verify(database, key, state, "--since-checkpoint")
    assert code == 1 and {(x["complaint_id"], x["kind"]) for x in since["breaks"]} == {(e, "hash_mismatch")}
    assert incremental.load(state).checkpoint == newer  # a broken run moves nothing
    await as_superuser(admin, ("UPDATE complaint_events SET payload = $1 WHERE complaint_id = $2 AND sequence = 1",
                               row["payload"], e))

    # Before the checkpoint: b (untouched since) rewritten from its first event down, every hash recomputed.
    stored = [dict(r) for r in await rows(admin, b)]
    forged = rechain(b, [{**stored[0], "payload": {**stored[0]["payload"], "label": "forged"}}, *stored[1:]],
                     stored[0]["prev_hash"])
    await as_superuser(admin, ("DELETE FROM complaint_events WHERE complaint_id = $1", b),
                       *(insert(r) for r in forged))
    code, since = verify(database, key, state, "--since-checkpoint")
    assert code == 1
    assert ("sealed_head_changed", b) in {(x["kind"], x["complaint_id"]) for x in since["breaks"]}


async def test_the_sealed_heads_are_looked_up_one_by_one_and_only_those_that_differ_come_back(
        store: PostgresEventStore) -> None:
    """The check of the heads a checkpoint sealed names a head rewritten and a head gone, and nothing for a head
    that holds; the same whether the heads go as lines of text or (an id with a newline, which no complaint
    has) as lists."""
    held, rewritten = new_id(), new_id()
    for cid in (held, rewritten):
        await store.append(records(cid, "one", "two"))
    heads = {held: (2, (await store.head(held)).hash), rewritten: (2, "e" * 64), new_id(): (1, "d" * 64)}
    checkpoint = cp.Checkpoint(position=1, events=5, complaints=3, root="0" * 64, sealed_at="2026-12-02T00:00:00Z",
                               public_key="", signature="")
    for odd in ({}, {"no\nsuch": (1, "c" * 64)}):
        found = await incremental._sealed_heads_unchanged(store, incremental.VerifiedState(checkpoint,
                                                                                          {**heads, **odd}))
        said = {b.complaint_id: b.detail for b in found}
        assert set(said) == set(heads) - {held} | set(odd) and {b.kind for b in found} == {"sealed_head_changed"}
        assert said[rewritten].endswith("not the one sealed")
        assert all(detail.endswith("gone") for cid, detail in said.items() if cid != rewritten)


async def test_the_kept_state_reads_back_in_either_form_and_a_broken_one_is_refused(
        store: PostgresEventStore, sealer_pool: asyncpg.Pool, tmp_path: Path) -> None:
    """The state is kept as three columns; a state kept before (a mapping of pairs) still reads back; columns
    that do not line up, or a head that is not (integer, text), are no state to start from."""
    key = cp.signing_key(cp.new_seal_key())
    for cid in (new_id(), new_id()):
        await store.append(records(cid, "one", "two"))
    kept = await incremental.state_at(store, await cp.seal(sealer_pool, key, ORIGIN))
    path = tmp_path / "verified.json"
    incremental.save(kept, path)
    columns = json.loads(path.read_text())
    assert set(columns) == {"checkpoint", "complaints", "sequences", "hashes"}
    assert columns["complaints"] == sorted(kept.heads)
    assert incremental.load(path) == kept

    path.write_text(json.dumps({"checkpoint": columns["checkpoint"],
                                "heads": {cid: list(head) for cid, head in kept.heads.items()}}))
    assert incremental.load(path) == kept

    for broken in ({**columns, "sequences": columns["sequences"][:-1]},
                   {**columns, "sequences": [str(s) for s in columns["sequences"]]},
                   {**columns, "hashes": [None] * len(columns["hashes"])},
                   {key: value for key, value in columns.items() if key != "hashes"}):
        path.write_text(json.dumps(broken))
        try:
            incremental.load(path)
        except incremental.NoVerifiedCheckpoint:
            pass
        else:
            raise AssertionError(f"a broken state was read: {sorted(broken)}")
