"""Checkpoints and bundles hold only against a key the auditor trusts, in the C2SP signed-note shape, and a
planted or malformed row is named, never printed or verified as the operator's own (a real PostgreSQL)."""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

from audit import bundle as bundles
from audit import checkpoints as cp
from audit.verify import Verifier
from eventlog import PostgresEventStore
from tests.eventlog.contract import new_id, records

ROOT = Path(__file__).parent.parent.parent
ORIGIN = "complaints.test/log"


async def some_events(store: PostgresEventStore, *ids: str) -> list[str]:
    ids = ids or (new_id(), new_id())
    for cid in ids:
        await store.append(records(cid, "one", "two"))
    return list(ids)


def complaints(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k != cp.PUBLIC_KEY_ENV}
    return subprocess.run([sys.executable, "-m", "cli.main", *args], capture_output=True, text=True, cwd=ROOT,
                          env={**clean, **(env or {})}, timeout=60)


async def test_a_checkpoint_is_a_c2sp_signed_note_naming_the_deployment(store: PostgresEventStore,
                                                                        sealer_pool: asyncpg.Pool) -> None:
    await some_events(store)
    key = cp.signing_key(cp.new_seal_key())
    sealed = await cp.seal(sealer_pool, key, ORIGIN)
    assert sealed.note is not None
    text, signature_line = sealed.note.split("\n\n")
    origin, size, root, *extensions = text.split("\n")
    assert (origin, int(size), base64.b64decode(root).hex()) == (ORIGIN, sealed.complaints, sealed.root)
    assert sealed.horizon is not None  # what it seals: every row below that transaction id
    assert extensions == [f"position {sealed.position}", f"horizon {sealed.horizon}", f"events {sealed.events}",
                          f"sealed {sealed.sealed_at.strftime('%Y-%m-%dT%H:%M:%S.%fZ')}"]
    # The signature line: an em dash, the key name, base64 of the 4-byte key id and the Ed25519 signature,
    # the key id being SHA-256(name || "\n" || 0x01 || public key) as note tooling computes it.
    assert signature_line.startswith(f"\u2014 {ORIGIN} ") and signature_line.endswith("\n")
    blob = base64.b64decode(signature_line.split(" ")[-1])
    public = base64.urlsafe_b64decode(sealed.public_key + "=")
    assert blob[:4] == hashlib.sha256(ORIGIN.encode() + b"\n\x01" + public).digest()[:4] and len(blob) == 68
    vkey = cp.verifier_key(ORIGIN, key)
    assert vkey.startswith(f"{ORIGIN}+{blob[:4].hex()}+")
    assert sealed.signature_status(vkey) is cp.Signature.verified
    assert sealed.signature_status(cp.public_key_of(key)) is cp.Signature.verified
    assert sealed.signature_status(None) is cp.Signature.unchecked
    # Another deployment's checkpoint, signed by the same key under its own origin, is not ours.
    assert sealed.signature_status(cp.verifier_key("other.example/log", key)) is cp.Signature.bad


async def test_seal_refuses_a_row_planted_at_its_position(store: PostgresEventStore, sealer_pool: asyncpg.Pool,
                                                         admin: asyncpg.Connection) -> None:
    await some_events(store)
    position = await admin.fetchval("SELECT max(position) FROM complaint_events")
    forger = cp.signing_key(cp.new_seal_key())
    planted = await cp.seal(sealer_pool, forger, ORIGIN)  # the forger's row, at the position we will seal
    assert planted.position == position
    with pytest.raises(cp.SealRefused, match="not signed by this key"):
        await cp.seal(sealer_pool, cp.signing_key(cp.new_seal_key()), ORIGIN)
    # The same key sealing the same position again gets its own checkpoint back, unchanged.
    assert await cp.seal(sealer_pool, forger, ORIGIN) == planted


async def test_a_made_up_bundle_is_not_called_verified_without_a_trusted_key(
        store: PostgresEventStore, sealer_pool: asyncpg.Pool, app_pool: asyncpg.Pool, tmp_path: Path) -> None:
    [cid, _] = await some_events(store)
    fresh = cp.signing_key(cp.new_seal_key())  # anyone can make a key and sign whatever they like
    await cp.seal(sealer_pool, fresh, ORIGIN)
    path = tmp_path / "bundle.json"
    path.write_bytes((await bundles.export(app_pool, cid)).to_bytes())
    unchecked = bundles.verify(path.read_bytes(), None)
    assert unchecked.ok and not unchecked.signature_checked
    shown = complaints("verify", "--bundle", str(path))
    assert shown.returncode == 3, shown.stdout + shown.stderr
    assert "not verified" in shown.stdout and "NOT checked against a trusted key" in " ".join(shown.stdout.split())
    trusted = cp.signing_key(cp.new_seal_key())
    wrong = complaints("verify", "--bundle", str(path), "--public-key", cp.verifier_key(ORIGIN, trusted))
    assert wrong.returncode == 1 and "checkpoint_signature" in wrong.stdout
    right = complaints("verify", "--bundle", str(path), env={cp.PUBLIC_KEY_ENV: cp.verifier_key(ORIGIN, fresh)})
    assert right.returncode == 0 and "signed by the trusted key" in " ".join(right.stdout.split())


async def test_a_malformed_stored_checkpoint_is_named_and_hides_nothing(
        store: PostgresEventStore, sealer_pool: asyncpg.Pool, admin: asyncpg.Connection) -> None:
    await some_events(store)
    key = cp.signing_key(cp.new_seal_key())
    good = await cp.seal(sealer_pool, key, ORIGIN)
    await admin.execute("INSERT INTO complaint_checkpoints (position, events, complaints, root, sealed_at, public_key,"
                        " signature, note) VALUES (999999, 1, 1, repeat('z', 64), now(), 'k', 's', 'garbage')")
    result = await Verifier(store, None, trusted_public_key=cp.verifier_key(ORIGIN, key)).verify(None)
    assert [(b.complaint_id, b.kind) for b in result.breaks] == [("checkpoint @999999", "checkpoint_malformed")]
    assert result.checkpoints == 2 and len(result.by_complaint) == 2  # the rest was still checked
    assert good.signature_holds(cp.verifier_key(ORIGIN, key))


async def test_verify_all_without_a_trusted_key_says_so(store: PostgresEventStore, sealer_pool: asyncpg.Pool) -> None:
    await some_events(store)
    await cp.seal(sealer_pool, cp.signing_key(cp.new_seal_key()), ORIGIN)
    result = await Verifier(store, None).verify(None)
    assert result.ok and result.unchecked_signatures == 1


async def test_merkle_leaves_are_in_code_point_order_whatever_the_collation(store: PostgresEventStore,
                                                                            admin: asyncpg.Connection) -> None:
    ids = ["a-1", "B-1", "_x", "Z", "\u00e9-1", "b"]
    await some_events(store, *ids)
    position = await admin.fetchval("SELECT max(position) FROM complaint_events")
    heads, events = await cp.heads_at(admin, ("position <= $1", [position]))
    assert [h[0] for h in heads] == sorted(ids, key=lambda i: i.encode()) and events == 2 * len(ids)
    assert [h[0] for h in heads] == ["B-1", "Z", "_x", "a-1", "b", "\u00e9-1"]


async def test_many_checkpoints_are_checked_in_one_pass_each_against_the_rows_below_its_horizon(
        store: PostgresEventStore, sealer_pool: asyncpg.Pool, admin: asyncpg.Connection) -> None:
    """Three checkpoints, events appended between them, checked together in one walk of the log: each holds
    as it was sealed, the verify keeps the newest one's heads, and an event deleted between the first and the
    second breaks the second and the third, not the first, exactly as checking each on its own finds."""
    from tests.audit.test_verify import as_superuser

    key = cp.signing_key(cp.new_seal_key())
    trusted = cp.verifier_key(ORIGIN, key)
    a, _ = await some_events(store)
    first = await cp.seal(sealer_pool, key, ORIGIN)
    await store.append(records(a, "three", head=(await store.read(a))[-1].head))
    c = (await some_events(store, new_id()))[0]
    second = await cp.seal(sealer_pool, key, ORIGIN)
    await some_events(store, new_id())
    await store.append(records(c, "three", head=(await store.read(c))[-1].head))
    third = await cp.seal(sealer_pool, key, ORIGIN)
    assert first.events < second.events < third.events and first.horizon < second.horizon < third.horizon

    result = await Verifier(store, None, trusted_public_key=trusted).verify(None)
    assert result.ok and result.checkpoints == 3
    assert result.newest_heads is not None and result.newest_heads[0] == third.position
    async with sealer_pool.acquire() as conn:
        assert result.newest_heads[1] == (await cp.heads_at(conn, third))[0]

    await as_superuser(admin, ("DELETE FROM complaint_events WHERE complaint_id = $1 AND sequence = 3", a))
    found, _ = await cp.check_all(sealer_pool, [third, first, second], trusted)
    broken = {(one.complaint_id, one.kind) for one in found}
    assert broken == {(f"checkpoint @{sealed.position}", kind) for sealed in (second, third)
                      for kind in ("checkpoint_count", "checkpoint_root")}
    one_by_one = [one for sealed in (first, second, third) for one in await cp.check(sealer_pool, sealed, trusted)]
    assert sorted(found, key=str) == sorted(one_by_one, key=str)
